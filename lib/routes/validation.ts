import type { FastifySchemaCompiler } from 'fastify'
import type { TObject, TSchema } from '@sinclair/typebox'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import { errors } from '../errors.js'
import { headerError } from '../protocol/headers.js'

export type RequestCheck = (values: Record<string, unknown>) => Error | undefined
type ErrorFor = (name: string, value: unknown, schema: TSchema) => Error

/**
 * Compiles an object schema (headers or route params) into a check that returns
 * the error of the first listed property that fails, so that precedence (412
 * before 415 before 400) is the order of the schema's properties.
 */
export function compileCheck (schema: TObject, errorFor: ErrorFor): RequestCheck {
  const compiled = TypeCompiler.Compile(schema)
  const properties = Object.entries(schema.properties)
  return (values) => {
    if (compiled.Check(values)) return undefined
    const failing = new Set<string>()
    for (const error of compiled.Errors(values)) failing.add(error.path.split('/')[1] as string)
    const [name, property] = properties.find(([name]) => failing.has(name)) as [string, TSchema]
    return errorFor(name, values[name], property)
  }
}

export const compileHeaderCheck = (schema: TObject): RequestCheck => compileCheck(schema, headerError)

/** A route param that cannot be: an upload id not shaped like ours is an unknown upload; any other, a 404 naming it. */
function paramError (name: string): Error {
  return name === 'uid' ? new errors.FST_TUS_UPLOAD_NOT_FOUND() : new errors.FST_TUS_INVALID_ROUTE_PARAM(name)
}

/** Fastify validator compiler for the plugin's routes: TypeBox checks with the protocol's status codes. */
export const tusValidatorCompiler: FastifySchemaCompiler<TObject> = ({ schema, httpPart }) => {
  const check = compileCheck(schema, httpPart === 'headers' ? headerError : paramError)
  return (values: Record<string, unknown>) => {
    const error = check(values)
    return error === undefined ? true : { error }
  }
}
