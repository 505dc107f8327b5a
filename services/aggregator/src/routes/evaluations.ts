// GET /v1/federations/{id}/evaluations: the server-side validation scores of a federation's global
// versions (fuss server --eval-data DIR), for the dashboard's chart. Members read them.

import type { FastifyInstance } from 'fastify';
import { Type, type Static } from '@sinclair/typebox';
import { FederationParams } from '../schemas/federations.js';
import type { ValidationService } from '../services/validation-service.js';

export async function evaluationRoutes(app: FastifyInstance, opts: { validation: ValidationService }) {
  app.get<{ Params: Static<typeof FederationParams> }>('/v1/federations/:federationId/evaluations', {
    config: { access: 'member' },
    schema: {
      operationId: 'listEvaluations',
      summary: "Server-side validation of a federation's global versions: mIoU and pixel accuracy on the server's labelled dataset (fuss server --eval-data)",
      tags: ['models'],
      security: [{ bearer: [] }],
      params: FederationParams,
      response: { 200: Type.Ref('EvaluationList') },
    },
    handler: async (request) => opts.validation.evaluations(request.params.federationId),
  });
}
