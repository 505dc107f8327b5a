// GET/PUT /v1/federations/{id}/classes: the names and colours of a federation's classes. Members
// read them, the admin replaces them; the auth plugin checks the token before the body is read.

import type { FastifyInstance } from 'fastify';
import { Type, type Static } from '@sinclair/typebox';
import type { ClassLabel } from '@fuss/core';
import { FederationParams } from '../schemas/federations.js';
import type { ClassesService } from '../services/classes-service.js';

const security = [{ bearer: [] }];
/** 1000 classes of 64-character names with colours fit in well under this. */
const CLASSES_BODY_LIMIT = 256 * 1024;

export async function classRoutes(app: FastifyInstance, opts: { classes: ClassesService }) {
  const { classes } = opts;

  app.get<{ Params: Static<typeof FederationParams> }>('/v1/federations/:federationId/classes', {
    config: { access: 'member' },
    schema: { operationId: 'getClasses', summary: "The names and colours of a federation's classes (admin or its participants)", tags: ['classes'], security, params: FederationParams, response: { 200: Type.Ref('ClassLabels') } },
    handler: async (request) => ({ classes: await classes.get(request.params.federationId) }),
  });

  app.put<{ Params: Static<typeof FederationParams>; Body: { classes: ClassLabel[] } }>('/v1/federations/:federationId/classes', {
    config: { access: 'admin' },
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
    handler: async (request) => ({ classes: await classes.set(request.params.federationId, request.body.classes) }),
  });
}
