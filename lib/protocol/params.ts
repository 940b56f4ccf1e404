import { Type } from '@sinclair/typebox'

/** The route parameter naming one upload: nanoid's alphabet and length. */
export const UploadId = Type.String({ pattern: '^[A-Za-z0-9_-]{21}$' })

/** Any other route parameter: never empty. */
export const RouteParam = Type.String({ minLength: 1 })
