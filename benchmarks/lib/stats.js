// Small numbers helpers for the report.

export const MiB = 2 ** 20
export const GiB = 2 ** 30

export function median (values) {
  if (values.length === 0) return NaN
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}

/** A fixed-width text table: `rows` of cells, the first row the header; columns after the first aligned right. */
export function table (rows) {
  const widths = rows[0].map((_, column) => Math.max(...rows.map((row) => String(row[column] ?? '').length)))
  return rows.map((row) => row.map((cell, column) => {
    const text = String(cell ?? '')
    return column === 0 ? text.padEnd(widths[column]) : text.padStart(widths[column])
  }).join('  ').trimEnd()).join('\n')
}

export function fixed (value, digits) {
  return Number.isFinite(value) ? value.toFixed(digits) : '-'
}

/** The `p`-th percentile (0-100) of `values`, nearest rank. */
export function percentile (values, p) {
  if (values.length === 0) return NaN
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p / 100 * sorted.length) - 1))]
}

export function plural (count, noun) {
  return `${count} ${noun}${count === 1 ? '' : 's'}`
}
