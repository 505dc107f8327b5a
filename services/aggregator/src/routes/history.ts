// GET /v1/federations/{id}/centroids and /updates: a federation's history for the dashboard's
// centroid map and charts. Members read them; a participant sees only its own updates' metrics.

import type { FastifyInstance } from 'fastify';
import { Type, type Static } from '@sinclair/typebox';
import { FederationParams } from '../schemas/federations.js';
import { UpdateReportsQuery } from '../schemas/history.js';
import type { HistoryService } from '../services/history-service.js';

const security = [{ bearer: [] }];

export async function historyRoutes(app: FastifyInstance, opts: { history: HistoryService }) {
  const { history } = opts;

  app.get<{ Params: Static<typeof FederationParams> }>('/v1/federations/:federationId/centroids', {
    config: { access: 'member' },
    schema: {
      operationId: 'getCentroidHistory',
      summary: "The centroids of a federation's global versions, with its class names and colours (admin or its participants)",
      description: 'All versions while versions x K x D stays within 500 000 values, else evenly spaced versions including the first and the latest.',
      tags: ['models'],
      security,
      params: FederationParams,
      response: { 200: Type.Ref('CentroidHistory') },
    },
    handler: async (request) => history.centroids(request.params.federationId),
  });

  app.get<{ Params: Static<typeof FederationParams>; Querystring: Static<typeof UpdateReportsQuery> }>('/v1/federations/:federationId/updates', {
    config: { access: 'member' },
    schema: {
      operationId: 'listUpdateReports',
      summary: 'What participants reported with their updates: round, samples and numeric metrics (admin: all participants; a participant: its own)',
      tags: ['rounds'],
      security,
      params: FederationParams,
      querystring: UpdateReportsQuery,
      response: { 200: Type.Ref('UpdateReports') },
    },
    handler: async (request) => {
      const caller = request.caller;
      const participantId = caller?.kind === 'participant' ? caller.participantId : undefined;
      return history.updates(request.params.federationId, { participantId, sinceRound: request.query.sinceRound });
    },
  });
}
