import type { FastifySchemaCompiler } from 'fastify'
import type { TObject, TSchema } from '@sinclair/typebox'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import { errors } from '../errors.js'
import { headerError } from '../protocol/headers.js'

export type HeaderCheck = (headers: Record<string, unknown>) => Error | undefined

/**
 * Compiles a header object schema into a check that returns the tus error of the
 * first listed header that fails, so that precedence (412 before 415 before 400)
 * is the order of the schema's properties.
 */
export function compileHeaderCheck (schema: TObject): HeaderCheck {
  const compiled = TypeCompiler.Compile(schema)
  const properties = Object.entries(schema.properties)
  return (headers) => {
    if (compiled.Check(headers)) return undefined
    const failing = new Set<string>()
    for (const error of compiled.Errors(headers)) failing.add(error.path.split('/')[1] ?? '')
    const [name, property] = properties.find(([name]) => failing.has(name)) as [string, TSchema]
    return headerError(name, headers[name], property)
  }
}

/**
 * Fastify validator compiler for the plugin's routes: TypeBox checks headers with
 * the protocol's status codes, and an upload id outside nanoid's shape is a 404.
 */
export const tusValidatorCompiler: FastifySchemaCompiler<TObject> = ({ schema, httpPart }) => {
  if (httpPart === 'headers') {
    const check = compileHeaderCheck(schema)
    return (headers: Record<string, unknown>) => {
      const error = check(headers)
      return error === undefined ? true : { error }
    }
  }
  const compiled = TypeCompiler.Compile(schema)
  return (params: unknown) => compiled.Check(params) ? true : { error: new errors.FST_TUS_UPLOAD_NOT_FOUND() }
}
