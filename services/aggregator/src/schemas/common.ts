// Shared TypeBox schemas: the problem body every error response uses.

import { Type } from '@sinclair/typebox';

export const Problem = Type.Object(
  {
    type: Type.String({ description: 'URI naming the kind of problem' }),
    title: Type.String(),
    status: Type.Integer(),
    detail: Type.String({ description: 'What went wrong, for a person' }),
    instance: Type.String({ description: 'Request id (also in the server log)' }),
  },
  { $id: 'Problem', description: 'RFC 9457 problem details' },
);

export const ProblemRef = Type.Ref('Problem');

/** Error responses added to every route (the onRoute hook of app.ts). */
export const STANDARD_ERRORS = [400, 401, 403, 404, 409, 413, 500] as const;

/** Problem responses a route documents beyond STANDARD_ERRORS (411 length required, 415, 422, 503). */
export function problemResponses(...statuses: number[]): Record<number, unknown> {
  return Object.fromEntries(statuses.map((status) => [status, { description: 'Problem', content: { 'application/problem+json': { schema: { $ref: 'Problem#' } } } }]));
}
