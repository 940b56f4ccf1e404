import { errors } from './errors.js'

const TOKEN = /::|:([A-Za-z0-9_]+)(\([^)]*\))?/g

/** A Fastify route URL (`/users/:username/uploads`) that can be filled back in. */
export interface RoutePattern {
  readonly url: string
  readonly params: readonly string[]
  /** The path with every param filled in, URL-encoded. */
  fill (name: string, values: Readonly<Record<string, unknown>>): string
}

export function parseRoutePattern (url: string): RoutePattern {
  const params = [...url.matchAll(TOKEN)].flatMap((match) => match[1] === undefined ? [] : [match[1]])
  return {
    url,
    params,
    fill (name, values) {
      return url.replace(TOKEN, (token, param: string | undefined) => {
        if (param === undefined) return ':'
        const value = values[param]
        if (value === undefined || value === null || value === '') throw new errors.FST_TUS_MISSING_ROUTE_PARAM(name, param)
        return encodeURIComponent(String(value))
      })
    }
  }
}
