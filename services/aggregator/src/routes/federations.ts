import type { FastifyInstance } from 'fastify';
import type { Static } from '@sinclair/typebox';
import { Type } from '@sinclair/typebox';
import { FederationCreate, FederationParams, ModelParams, ParticipantCreate } from '../schemas/federations.js';
import type { FederationsService } from '../services/federations-service.js';
import { participantCaller } from '../plugins/auth.js';

const security = [{ bearer: [] }];

export async function federationRoutes(app: FastifyInstance, opts: { federations: FederationsService }) {
  const { federations } = opts;

  app.post<{ Body: Static<typeof FederationCreate> }>('/v1/federations', {
    config: { access: 'admin' },
    schema: { operationId: 'createFederation', summary: 'Create a federation (admin); opens round 1 with the seeded initial model', tags: ['federations'], security, body: Type.Ref('FederationCreate'), response: { 201: Type.Ref('Federation') } },
    handler: async (request, reply) => reply.status(201).send(await federations.create(request.body)),
  });

  app.get('/v1/federations', {
    config: { access: 'admin' },
    schema: { operationId: 'listFederations', summary: 'List federations (admin)', tags: ['federations'], security, response: { 200: Type.Ref('FederationList') } },
    handler: async () => ({ federations: await federations.list() }),
  });

  app.get<{ Params: Static<typeof FederationParams> }>('/v1/federations/:federationId', {
    config: { access: 'member' },
    schema: { operationId: 'getFederation', summary: 'A federation and its configuration (admin or its participants)', tags: ['federations'], security, params: FederationParams, response: { 200: Type.Ref('Federation') } },
    handler: async (request) => federations.get(request.params.federationId),
  });

  app.post<{ Params: Static<typeof FederationParams>; Body: Static<typeof ParticipantCreate> }>('/v1/federations/:federationId/participants', {
    config: { access: 'admin' },
    schema: { operationId: 'addParticipant', summary: 'Enrol a participant (admin); returns its token once', tags: ['participants'], security, params: FederationParams, body: Type.Ref('ParticipantCreate'), response: { 201: Type.Ref('ParticipantCreated') } },
    handler: async (request, reply) => reply.status(201).send(await federations.addParticipant(request.params.federationId, request.body.name)),
  });

  app.get('/v1/participants/me', {
    config: { access: 'participant' },
    schema: { operationId: 'getParticipantSelf', summary: 'The participant a token belongs to: its federation and enrolment index (participant)', tags: ['participants'], security, response: { 200: Type.Ref('Participant') } },
    handler: async (request) => federations.participant(participantCaller(request).participantId),
  });

  app.get<{ Params: Static<typeof ModelParams> }>('/v1/federations/:federationId/models/:version', {
    config: { access: 'member' },
    schema: {
      operationId: 'getModel',
      summary: 'Download a global model version (safetensors); "latest" allowed',
      tags: ['models'],
      security,
      params: ModelParams,
      response: { 200: { description: 'safetensors file', content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } } } },
    },
    handler: async (request, reply) => {
      const version = request.params.version === 'latest' ? 'latest' : Number(request.params.version);
      const model = await federations.model(request.params.federationId, version);
      return reply
        .header('content-type', 'application/octet-stream')
        .header('x-model-version', String(model.version))
        .header('etag', `"${model.sha256}"`)
        .send(Buffer.from(model.weights.buffer, model.weights.byteOffset, model.weights.byteLength));
    },
  });
}
