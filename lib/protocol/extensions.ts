/** The tus extensions a registration can speak, in the order `Tus-Extension` lists them. */
export const EXTENSIONS = [
  'creation',
  'creation-with-upload',
  'creation-defer-length',
  'termination',
  'expiration',
  'checksum',
  'checksum-trailer',
  'concatenation',
  'concatenation-unfinished'
] as const

export type TusExtension = typeof EXTENSIONS[number]

/**
 * Extensions that the `disabledExtensions` option can turn off: creation is what
 * the plugin is, and expiration is on when the `expiration` option is set.
 */
export const OPTIONAL_EXTENSIONS: readonly TusExtension[] = EXTENSIONS.filter((name) => name !== 'creation' && name !== 'expiration')

/** Extensions that only make sense with another one. */
const REQUIRES: Partial<Record<TusExtension, TusExtension>> = {
  'checksum-trailer': 'checksum',
  'concatenation-unfinished': 'concatenation'
}

/** The extensions left on when `disabled` are turned off, with those that depend on them. */
export function enabledExtensions (disabled: readonly TusExtension[]): ReadonlySet<TusExtension> {
  const enabled = new Set<TusExtension>(EXTENSIONS.filter((name) => !disabled.includes(name)))
  for (const [name, required] of Object.entries(REQUIRES) as Array<[TusExtension, TusExtension]>) {
    if (!enabled.has(required)) enabled.delete(name)
  }
  return enabled
}
