// GET/PUT /v1/federations/{id}/classes: the names and colours of a federation's classes. Members
// read them, the admin replaces them. The token is checked before the body is read.

import type { FastifyInstance } from 'fastify';
import { Type, type Static } from '@sinclair/typebox';
import { FederationParams } from '../schemas/federations.js';
import type { ClassLabel } from '@fuss/core';
import type { ClassesService } from '../services/classes-service.js';
import type { Auth } from '../plugins/auth.js';

const security = [{ bearer: [] }];
/** 1000 classes of 64-character names with colours fit in well under this. */
const CLASSES_BODY_LIMIT = 256 * 1024;

export async function classRoutes(app: FastifyInstance, opts: { classes: ClassesService; auth: Auth }) {
  const { classes, auth } = opts;

  app.get<{ Params: Static<typeof FederationParams> }>('/v1/federations/:federationId/classes', {
    schema: { operationId: 'getClasses', summary: "The names and colours of a federation's classes (admin or its participants)", tags: ['classes'], security, params: FederationParams, response: { 200: Type.Ref('ClassLabels') } },
    onRequest: (request) => auth.requireMember(request, (request.params as Static<typeof FederationParams>).federationId).then(() => undefined),
    handler: async (request) => ({ classes: await classes.get(request.params.federationId) }),
  });

  app.put<{ Params: Static<typeof FederationParams>; Body: { classes: ClassLabel[] } }>('/v1/federations/:federationId/classes', {
    bodyLimit: CLASSES_BODY_LIMIT,
    schema: {
      operationId: 'setClasses',
      summary: "Replace the names and colours of a federation's classes (admin); ids are 0..K-1, each at most once",
      tags: ['classes'],
      security,
      params: FederationParams,
      body: Type.Ref('ClassLabels'),
      response: { 200: Type.Ref('ClassLabels') },
    },
    onRequest: (request) => auth.requireAdmin(request),
    handler: async (request) => ({ classes: await classes.set(request.params.federationId, request.body.classes) }),
  });
}
