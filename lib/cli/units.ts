/** Bytes per unit: decimal (KB, MB, ...) and binary (KiB, MiB, ...), case-insensitive; `B` or nothing is bytes. */
const SIZE_UNITS: Readonly<Record<string, number>> = {
  '': 1,
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
  tib: 2 ** 40
}

/** Milliseconds per unit; nothing is milliseconds. */
const DURATION_UNITS: Readonly<Record<string, number>> = {
  '': 1,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000
}

/** A size such as `5368709120`, `5GiB` or `1.5 GB`, in whole bytes. */
export function parseSize (text: string): number {
  return parseQuantity(text, SIZE_UNITS, 'a size such as 1073741824, 512MiB or 2GB')
}

/** A duration such as `90000`, `90s`, `30m` or `1d`, in milliseconds. */
export function parseDuration (text: string): number {
  return parseQuantity(text, DURATION_UNITS, 'a duration such as 86400000 (ms), 90s, 30m, 24h or 7d')
}

function parseQuantity (text: string, units: Readonly<Record<string, number>>, expected: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text)
  const unit = units[match?.[2]?.toLowerCase() ?? '']
  const value = match === null || unit === undefined ? NaN : Math.round(Number(match[1]) * unit)
  if (!Number.isSafeInteger(value) || value <= 0) throw new RangeError(`"${text}" is not ${expected}`)
  return value
}
