// The aggregation server as a Fastify app built from its dependencies (database, configuration,
// logger). Only server.ts listens; tests build the app and use inject().

import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { Database } from './db/database.js';
import { limitsWith, type ServerConfig, type ServerLimits } from './config.js';
import { problemDetails } from './plugins/problem-details.js';
import { bodyIdleTimeout } from './plugins/body-idle.js';
import { authPlugin } from './plugins/auth.js';
import { Problem, STANDARD_ERRORS } from './schemas/common.js';
import { Federation, FederationCreate, FederationList, Participant, ParticipantCreate, ParticipantCreated, ParticipantDetails, ParticipantList } from './schemas/federations.js';
import { createFederationsService } from './services/federations-service.js';
import { healthRoutes } from './routes/health.js';
import { metricsPlugin } from './plugins/metrics.js';
import { federationRoutes } from './routes/federations.js';
import { roundRoutes, UploadBudget } from './routes/rounds.js';
import { segmentRoutes } from './routes/segment.js';
import { createSegmentService } from './services/segment-service.js';
import type { SegmentPool } from './segmentation/worker-pool.js';
import { createRoundsService, type RoundsDependencies, type RoundsService } from './services/rounds-service.js';
import type { ModelComputer } from './aggregation/model-worker.js';
import { JoinAnswer, RoundHistory, SubmitAnswer } from './schemas/rounds.js';
import { ClassLabel, ClassLabels } from './schemas/classes.js';
import { classRoutes } from './routes/classes.js';
import { createClassesService } from './services/classes-service.js';
import { CentroidHistory, UpdateReport, UpdateReports } from './schemas/history.js';
import { historyRoutes } from './routes/history.js';
import { createHistoryService } from './services/history-service.js';
import { dashboardRoutes } from './routes/dashboard.js';
import { dashboardDir } from '@fuss/dashboard';
import { EvaluationList } from './schemas/evaluations.js';
import { evaluationRoutes } from './routes/evaluations.js';
import { createValidationService } from './services/validation-service.js';
import type { Validator } from './evaluation/validator.js';

export interface AppDependencies {
  db: Database;
  config: Pick<ServerConfig, 'adminToken' | 'metricsToken'> & { limits?: Partial<ServerLimits> };
  logger?: FastifyServerOptions['logger'];
  clock?: () => Date;
  /** Workers holding the backbone for POST /segment (without them /segment answers 409). */
  segmentPool?: SegmentPool;
  /** Check deadlines and abandoned aggregations this often (ms); off when undefined (tests call sweep). */
  sweepIntervalMs?: number;
  /** Connection timeouts of the HTTP server (only meaningful when it listens). */
  timeouts?: Pick<ServerLimits, 'headersTimeoutMs' | 'requestTimeoutMs' | 'idleTimeoutMs' | 'keepAliveTimeoutMs'>;
  /** Where models are computed: the server passes its worker thread; default the calling thread. */
  modelComputer?: ModelComputer;
  /** Server-side validation (fuss server --eval-data): scores every new global version; none when undefined. */
  validator?: Validator;
  /** Folder of the built dashboard served at / (default: the @fuss/dashboard workspace's dist/). */
  dashboardDir?: string;
  /** Test hook of the rounds service (runs before an aggregation's commit). */
  beforeCommit?: RoundsDependencies['beforeCommit'];
}

declare module 'fastify' {
  interface FastifyInstance {
    rounds: RoundsService;
  }
}

export async function buildApp(deps: AppDependencies): Promise<FastifyInstance> {
  const limits = limitsWith(deps.config.limits);
  const app = Fastify({
    logger: deps.logger ?? false,
    // JSON routes; the update and image routes set their own limits.
    bodyLimit: limits.jsonBodyBytes,
    ...(deps.timeouts && {
      requestTimeout: deps.timeouts.requestTimeoutMs,
      keepAliveTimeout: deps.timeouts.keepAliveTimeoutMs,
      // Socket inactivity in both directions: a stalled body, or a client that stopped reading.
      connectionTimeout: deps.timeouts.idleTimeoutMs,
      // Node checks the header and request timeouts this often (30 s by default).
      http: { headersTimeout: deps.timeouts.headersTimeoutMs, connectionsCheckingInterval: 1000 },
    }),
    // Tokens must not reach the logs: log the route, never the headers.
    ajv: { customOptions: { removeAdditional: false, useDefaults: true, coerceTypes: 'array' } },
  });
  await app.register(problemDetails);
  await app.register(bodyIdleTimeout, { idleMs: limits.bodyIdleTimeoutMs });
  for (const schema of [Problem, FederationCreate, Federation, FederationList, ParticipantCreate, ParticipantCreated, Participant, ParticipantDetails, ParticipantList, JoinAnswer, SubmitAnswer, RoundHistory, ClassLabel, ClassLabels, CentroidHistory, UpdateReport, UpdateReports, EvaluationList]) app.addSchema(schema);
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

  const federations = createFederationsService({ prisma: deps.db.prisma, blobs: deps.db.blobs, updateLimitBytes: limits.updateBytes, clock: deps.clock, computer: deps.modelComputer });
  await app.register(authPlugin, { adminToken: deps.config.adminToken, metricsToken: deps.config.metricsToken, federations });
  await app.register(healthRoutes, { db: deps.db });
  await metricsPlugin(app);
  await app.register(federationRoutes, { federations });
  // Class names: their routes, and (for /segment's JSON and overlays) the service.
  const classes = createClassesService({ prisma: deps.db.prisma, federations });
  await app.register(classRoutes, { classes });
  await app.register(historyRoutes, { history: createHistoryService({ prisma: deps.db.prisma, blobs: deps.db.blobs, federations, classes }) });
  const validation = createValidationService({ prisma: deps.db.prisma, blobs: deps.db.blobs, federations, validator: deps.validator, log: (line) => app.log.info(line) });
  await app.register(evaluationRoutes, { validation });
  if (deps.validator) {
    validation.start(deps.sweepIntervalMs ?? 5000);
    app.addHook('onClose', async () => validation.close());
  }
  await app.register(dashboardRoutes, { dir: deps.dashboardDir ?? dashboardDir });
  const rounds = createRoundsService({
    prisma: deps.db.prisma,
    blobs: deps.db.blobs,
    clock: deps.clock,
    log: (line) => app.log.info(line),
    leaseMs: limits.aggregationLeaseMs,
    keepUpdateRounds: limits.keepUpdateRounds,
    beforeCommit: deps.beforeCommit,
    computer: deps.modelComputer,
  });
  await app.register(roundRoutes, { rounds, federations, budget: new UploadBudget(limits.uploadBytesInFlight) });
  app.decorate('rounds', rounds);
  await app.register(segmentRoutes, { segment: createSegmentService({ pool: deps.segmentPool, federations, classes, limits }), imageBytes: limits.imageBytes });
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
