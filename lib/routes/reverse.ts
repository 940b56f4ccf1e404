import type { FastifyInstance } from 'fastify'
import { errors } from '../errors.js'
import { parseRoutePattern, type RoutePattern } from '../route-pattern.js'

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * The path of a tus route by name: the creation route (`uploadResourceName`)
     * or an upload (`${uploadResourceName}_resource`, with the `uid` param).
     */
    tusUrlFor (name: string, params?: Readonly<Record<string, string | number>>): string
  }
}

/** Route names are unique in one app; every context of an app shares its server. */
const namesByApp = new WeakMap<object, Map<string, RoutePattern>>()

/** The name of the upload route that belongs to a creation route. */
export const resourceRouteName = (name: string): string => `${name}_resource`

/**
 * Registers the two route names of one plugin registration and returns the
 * upload route's pattern. A name already in use in the app throws.
 */
export function nameRoutes (instance: FastifyInstance, name: string, creation: RoutePattern): RoutePattern {
  let names = namesByApp.get(instance.server)
  if (names === undefined) {
    names = new Map()
    namesByApp.set(instance.server, names)
  }
  const resource = parseRoutePattern(`${creation.url.replace(/\/$/, '')}/:uid`)
  for (const taken of [name, resourceRouteName(name)]) {
    if (names.has(taken)) throw new errors.FST_TUS_ROUTE_NAME_TAKEN(taken)
  }
  names.set(name, creation)
  names.set(resourceRouteName(name), resource)
  if (!instance.hasDecorator('tusUrlFor')) instance.decorate('tusUrlFor', tusUrlFor)
  return resource
}

function tusUrlFor (this: FastifyInstance, name: string, params: Readonly<Record<string, string | number>> = {}): string {
  const route = namesByApp.get(this.server)?.get(name)
  if (route === undefined) throw new errors.FST_TUS_UNKNOWN_ROUTE(name)
  return route.fill(name, params)
}
