// The aggregation server as a Fastify app built from its dependencies (database, configuration,
// logger). Only server.ts listens; tests build the app and use inject().

import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { Database } from './db/database.js';
import type { ServerConfig } from './config.js';
import { problemDetails } from './plugins/problem-details.js';
import { createAuth } from './plugins/auth.js';
import { Problem, STANDARD_ERRORS } from './schemas/common.js';
import { Federation, FederationCreate, FederationList, Participant, ParticipantCreate, ParticipantCreated } from './schemas/federations.js';
import { createFederationsService } from './services/federations-service.js';
import { healthRoutes } from './routes/health.js';
import { metricsPlugin } from './plugins/metrics.js';
import { federationRoutes } from './routes/federations.js';
import { roundRoutes } from './routes/rounds.js';
import { segmentRoutes } from './routes/segment.js';
import { createSegmentService } from './services/segment-service.js';
import type { Backbone, TrainingEngine } from '@fuss/core';
import { createRoundsService, type RoundsService } from './services/rounds-service.js';
import { JoinAnswer, RoundHistory, SubmitAnswer } from './schemas/rounds.js';
import { ClassLabel, ClassLabels } from './schemas/classes.js';
import { classRoutes } from './routes/classes.js';
import { createClassesService } from './services/classes-service.js';

export interface AppDependencies {
  db: Database;
  config: Pick<ServerConfig, 'adminToken' | 'bodyLimit'>;
  logger?: FastifyServerOptions['logger'];
  clock?: () => Date;
  /** Backbone and engine for POST /segment (without them /segment answers 409). */
  backbone?: Backbone;
  engine?: TrainingEngine;
  /** Check deadlines and abandoned aggregations this often (ms); off when undefined (tests call sweep). */
  sweepIntervalMs?: number;
}

declare module 'fastify' {
  interface FastifyInstance {
    rounds: RoundsService;
  }
}

export async function buildApp(deps: AppDependencies): Promise<FastifyInstance> {
  const app = Fastify({
    logger: deps.logger ?? false,
    bodyLimit: deps.config.bodyLimit,
    // Tokens must not reach the logs: log the route, never the headers.
    ajv: { customOptions: { removeAdditional: false, useDefaults: true, coerceTypes: 'array' } },
  });
  await app.register(problemDetails);
  for (const schema of [Problem, FederationCreate, Federation, FederationList, ParticipantCreate, ParticipantCreated, Participant, JoinAnswer, SubmitAnswer, RoundHistory, ClassLabel, ClassLabels]) app.addSchema(schema);
  // Every route documents the shared problem responses.
  app.addHook('onRoute', (route) => {
    if (!route.schema || (route.url as string).startsWith('/docs')) return;
    const response = (route.schema.response ??= {}) as Record<string, unknown>;
    for (const status of STANDARD_ERRORS) response[status] ??= { description: 'Problem', content: { 'application/problem+json': { schema: { $ref: 'Problem#' } } } };
  });
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: { title: 'FUSS aggregation server', description: 'Federated unsupervised semantic segmentation: federations, participants, rounds, updates and global models.', version: '0.1.0' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'Admin token (FUSS_ADMIN_TOKEN) or a participant token' } } },
    },
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`) },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  const federations = createFederationsService({ prisma: deps.db.prisma, clock: deps.clock });
  const auth = createAuth({ adminToken: deps.config.adminToken, federations });
  await app.register(healthRoutes, { db: deps.db });
  await metricsPlugin(app);
  await app.register(federationRoutes, { federations, auth });
  // Class names: their routes, and (for /segment's JSON and overlays) the service.
  const classes = createClassesService({ prisma: deps.db.prisma, federations });
  await app.register(classRoutes, { classes, auth });
  const rounds = createRoundsService({ prisma: deps.db.prisma, clock: deps.clock, log: (line) => app.log.info(line) });
  await app.register(roundRoutes, { rounds, auth });
  app.decorate('rounds', rounds);
  await app.register(segmentRoutes, { segment: createSegmentService({ backbone: deps.backbone, engine: deps.engine, federations }), auth });
  // Aggregations started by a final upload finish before the database closes.
  app.addHook('onClose', async () => rounds.idle());
  if (deps.sweepIntervalMs) {
    let sweeping = false;
    const timer = setInterval(() => {
      if (sweeping) return;
      sweeping = true;
      rounds.sweep().catch((err: unknown) => app.log.error({ err }, 'round sweep failed')).finally(() => (sweeping = false));
    }, deps.sweepIntervalMs);
    timer.unref();
    app.addHook('onClose', async () => clearInterval(timer));
  }
  return app;
}
