import type { FastifyInstance } from 'fastify';
import { Type, type Static } from '@sinclair/typebox';
import { FussError } from '@fuss/core';
import { FederationParams } from '../schemas/federations.js';
import { RoundParams, SubmitQuery } from '../schemas/rounds.js';
import type { RoundsService } from '../services/rounds-service.js';
import type { Auth } from '../plugins/auth.js';
import { ForbiddenError } from '../errors.js';

const security = [{ bearer: [] }];

export async function roundRoutes(app: FastifyInstance, opts: { rounds: RoundsService; auth: Auth }) {
  const { rounds, auth } = opts;
  app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));

  const participantOf = async (request: Parameters<Auth['requireMember']>[0], federationId: string) => {
    const caller = await auth.requireMember(request, federationId);
    if (caller.kind !== 'participant') throw new ForbiddenError('only participants join rounds and upload updates');
    return caller;
  };

  app.post<{ Params: Static<typeof FederationParams> }>('/v1/federations/:federationId/rounds/current/join', {
    schema: { operationId: 'joinRound', summary: 'Join the current round: round number, model version, training settings and deadline, or why to wait', tags: ['rounds'], security, params: FederationParams, response: { 200: Type.Ref('JoinAnswer') } },
    handler: async (request, reply) => {
      const caller = await participantOf(request, request.params.federationId);
      const answer = await rounds.join(request.params.federationId, caller.participantId);
      if (answer.retryAfterSeconds) reply.header('retry-after', String(answer.retryAfterSeconds));
      return answer;
    },
  });

  app.put<{ Params: Static<typeof RoundParams>; Querystring: Static<typeof SubmitQuery>; Body: Buffer }>('/v1/federations/:federationId/rounds/:number/update', {
    schema: {
      operationId: 'submitUpdate',
      summary: "Upload this participant's update to a round (safetensors body); idempotent: a retry with the same bytes counts once",
      tags: ['rounds'],
      security,
      params: RoundParams,
      querystring: SubmitQuery,
      // The body is a safetensors file (application/octet-stream), checked by the service; it is not
      // described with a JSON schema because the validator would test the raw Buffer against it.
      consumes: ['application/octet-stream'],
      response: { 200: Type.Ref('SubmitAnswer'), 201: Type.Ref('SubmitAnswer') },
    },
    handler: async (request, reply) => {
      const caller = await participantOf(request, request.params.federationId);
      if (!Buffer.isBuffer(request.body)) throw new FussError('the body must be a safetensors file sent as application/octet-stream', { status: 415, type: 'unsupported-media-type' });
      let metrics: unknown;
      if (request.query.metrics !== undefined) {
        try {
          metrics = JSON.parse(request.query.metrics);
        } catch {
          throw new FussError('the metrics query parameter must be JSON', { status: 400, type: 'validation' });
        }
        if (typeof metrics !== 'object' || metrics === null || Array.isArray(metrics)) throw new FussError('the metrics query parameter must be a JSON object', { status: 400, type: 'validation' });
      }
      const answer = await rounds.submit(request.params.federationId, caller.participantId, request.params.number, request.body, request.query.samples, metrics);
      return reply.status(answer.accepted ? 201 : 200).send(answer);
    },
  });

  app.get<{ Params: Static<typeof FederationParams> }>('/v1/federations/:federationId/rounds', {
    schema: { operationId: 'listRounds', summary: 'Round history with timings and metrics', tags: ['rounds'], security, params: FederationParams, response: { 200: Type.Ref('RoundHistory') } },
    preHandler: (request) => auth.requireMember(request, request.params.federationId).then(() => undefined),
    handler: async (request) => ({ rounds: await rounds.history(request.params.federationId) }),
  });
}
