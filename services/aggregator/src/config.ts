// Server configuration, read and checked once from the environment (fastify/demo env.ts). Every limit
// is declared once in LIMIT_SETTINGS (name, variable, default, bounds, meaning); the README's
// configuration table lists the same variables and a test keeps the two in step.

import { dirname, join } from 'node:path';

export interface ServerLimits {
  /** Largest JSON request body, bytes. */
  jsonBodyBytes: number;
  /** Largest update or model file, bytes; a federation whose model needs more is refused at creation. */
  updateBytes: number;
  /** Bytes of update bodies being received at once, over all participants (503 beyond). */
  uploadBytesInFlight: number;
  /** Largest image body of POST /segment, bytes. */
  imageBytes: number;
  /** Largest image of POST /segment, pixels (read from the image header before decoding). */
  imagePixels: number;
  /** Longest side, pixels, an image is resized to before the backbone; the mask comes back at full size. */
  segmentMaxSide: number;
  /** Largest mask returned as JSON (format=json), pixels; PNG has no such limit. */
  jsonMaskPixels: number;
  /** Worker threads running /segment inference. */
  segmentWorkers: number;
  /** /segment requests waiting for a worker; beyond, 503 with Retry-After. */
  segmentQueue: number;
  /** A /segment inference that runs longer is stopped (its worker restarts) and answered 503. */
  segmentTimeoutMs: number;
  /** Time to receive a request's headers. */
  headersTimeoutMs: number;
  /** Time to receive a whole request (headers and body). */
  requestTimeoutMs: number;
  /** A connection with no traffic in either direction for this long is closed. */
  idleTimeoutMs: number;
  /** A request body with no new byte for this long is cut off. */
  bodyIdleTimeoutMs: number;
  /** An idle keep-alive connection is closed after this long. */
  keepAliveTimeoutMs: number;
  /** Open connections, in all. */
  maxConnections: number;
  /** Open connections from one client address. */
  maxConnectionsPerIp: number;
  /** Aggregation lease: a claim not renewed for this long may be taken over by another process. */
  aggregationLeaseMs: number;
  /** Rounds whose participants' updates are kept after they close; older updates' weights are deleted. */
  keepUpdateRounds: number;
}

export interface ServerConfig {
  host: string;
  port: number;
  /** postgres:// URL; embedded PGlite in `pgliteDir` when absent. */
  databaseUrl?: string;
  pgliteDir: string;
  /** Where weight files live: `file` (a folder) or `postgres` (a table, shared by replicas). */
  blobStore: 'file' | 'postgres';
  blobDir: string;
  /** Token of the administrator (creates federations and participants). */
  adminToken?: string;
  /** When set, GET /metrics needs this bearer token (or the admin token). */
  metricsToken?: string;
  limits: ServerLimits;
  logLevel: string;
}

export class ConfigurationError extends Error {}

interface LimitSetting {
  key: keyof ServerLimits;
  env: string;
  default: number;
  min: number;
  max: number;
  description: string;
}

const MiB = 1024 * 1024;

/** Every limit: its variable, default and bounds. The README's configuration table mirrors this list. */
export const LIMIT_SETTINGS: readonly LimitSetting[] = [
  { key: 'jsonBodyBytes', env: 'FUSS_JSON_LIMIT', default: MiB, min: 1024, max: 64 * MiB, description: 'largest JSON request body, bytes' },
  { key: 'updateBytes', env: 'FUSS_UPDATE_LIMIT', default: 64 * MiB, min: 4096, max: 1024 * MiB, description: 'largest update or model file, bytes; federations whose model is larger are refused at creation' },
  { key: 'uploadBytesInFlight', env: 'FUSS_UPLOAD_BYTES_IN_FLIGHT', default: 512 * MiB, min: 4096, max: 16384 * MiB, description: 'update bytes being received at once over all participants (503 beyond)' },
  { key: 'imageBytes', env: 'FUSS_IMAGE_LIMIT', default: 20 * MiB, min: 1024, max: 512 * MiB, description: 'largest image body of POST /segment, bytes' },
  { key: 'imagePixels', env: 'FUSS_IMAGE_MAX_PIXELS', default: 25_000_000, min: 1, max: 268_000_000, description: 'largest image of POST /segment, pixels (read from the header before decoding)' },
  { key: 'segmentMaxSide', env: 'FUSS_SEGMENT_MAX_SIDE', default: 1024, min: 16, max: 8192, description: 'longest side an image is resized to before the backbone (the mask comes back at full size)' },
  { key: 'jsonMaskPixels', env: 'FUSS_JSON_MASK_MAX_PIXELS', default: 4_000_000, min: 1, max: 50_000_000, description: 'largest mask returned as JSON, pixels' },
  { key: 'segmentWorkers', env: 'FUSS_SEGMENT_WORKERS', default: 1, min: 1, max: 64, description: 'worker threads running /segment inference' },
  { key: 'segmentQueue', env: 'FUSS_SEGMENT_QUEUE', default: 8, min: 0, max: 10_000, description: '/segment requests waiting for a worker (503 with Retry-After beyond)' },
  { key: 'segmentTimeoutMs', env: 'FUSS_SEGMENT_TIMEOUT_MS', default: 30_000, min: 100, max: 3_600_000, description: 'longest /segment inference; its worker is restarted after it' },
  { key: 'headersTimeoutMs', env: 'FUSS_HEADERS_TIMEOUT_MS', default: 10_000, min: 100, max: 600_000, description: 'time to receive the request headers' },
  { key: 'requestTimeoutMs', env: 'FUSS_REQUEST_TIMEOUT_MS', default: 900_000, min: 1000, max: 86_400_000, description: 'time to receive a whole request (64 MiB in 15 minutes is 75 KB/s)' },
  { key: 'idleTimeoutMs', env: 'FUSS_IDLE_TIMEOUT_MS', default: 60_000, min: 100, max: 3_600_000, description: 'a connection with no traffic for this long is closed (also while a client waits for an answer)' },
  { key: 'bodyIdleTimeoutMs', env: 'FUSS_BODY_IDLE_TIMEOUT_MS', default: 15_000, min: 100, max: 3_600_000, description: 'a request body with no new byte for this long is cut off' },
  { key: 'keepAliveTimeoutMs', env: 'FUSS_KEEPALIVE_TIMEOUT_MS', default: 10_000, min: 100, max: 600_000, description: 'idle keep-alive connections are closed after this long' },
  { key: 'maxConnections', env: 'FUSS_MAX_CONNECTIONS', default: 1024, min: 1, max: 1_000_000, description: 'open connections in all' },
  { key: 'maxConnectionsPerIp', env: 'FUSS_MAX_CONNECTIONS_PER_IP', default: 64, min: 1, max: 1_000_000, description: 'open connections from one client address' },
  { key: 'aggregationLeaseMs', env: 'FUSS_AGGREGATION_LEASE_MS', default: 30_000, min: 1000, max: 3_600_000, description: 'an aggregation claim not renewed for this long is taken over' },
  { key: 'keepUpdateRounds', env: 'FUSS_KEEP_UPDATE_ROUNDS', default: 2, min: 0, max: 1_000_000, description: 'closed rounds whose updates are kept; older updates\' weights are deleted (models are kept)' },
];

export const DEFAULT_LIMITS: ServerLimits = Object.fromEntries(LIMIT_SETTINGS.map((s) => [s.key, s.default])) as unknown as ServerLimits;

/** The defaults with some limits replaced (tests, embedding). */
export function limitsWith(overrides: Partial<ServerLimits> = {}): ServerLimits {
  return { ...DEFAULT_LIMITS, ...overrides };
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);

export function isLoopback(host: string): boolean {
  const name = host.toLowerCase();
  return LOOPBACK.has(name) || name.startsWith('127.') || name.endsWith('.localhost');
}

function readLimits(env: NodeJS.ProcessEnv, overrides: Partial<ServerLimits>): ServerLimits {
  const limits = { ...DEFAULT_LIMITS };
  for (const setting of LIMIT_SETTINGS) {
    const text = env[setting.env];
    const value = overrides[setting.key] ?? (text === undefined || text === '' ? setting.default : Number(text));
    if (!Number.isSafeInteger(value) || value < setting.min || value > setting.max) {
      throw new ConfigurationError(`${setting.env} must be an integer in ${setting.min}..${setting.max} (got ${text ?? value})`);
    }
    limits[setting.key] = value;
  }
  return limits;
}

export function loadConfig(env: NodeJS.ProcessEnv, overrides: Partial<Omit<ServerConfig, 'limits'>> & { limits?: Partial<ServerLimits> } = {}): ServerConfig {
  const port = overrides.port ?? Number(env.PORT ?? 8080);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ConfigurationError(`PORT must be an integer in 0..65535 (got ${env.PORT})`);
  const databaseUrl = overrides.databaseUrl ?? (env.DATABASE_URL || undefined);
  const pgliteDir = overrides.pgliteDir ?? env.FUSS_DB_DIR ?? '.fuss/db';
  const blobStore = overrides.blobStore ?? ((env.FUSS_BLOB_STORE || (databaseUrl ? 'postgres' : 'file')) as ServerConfig['blobStore']);
  if (blobStore !== 'file' && blobStore !== 'postgres') throw new ConfigurationError(`FUSS_BLOB_STORE must be file or postgres (got ${blobStore})`);
  const config: ServerConfig = {
    host: overrides.host ?? env.HOST ?? '127.0.0.1',
    port,
    databaseUrl,
    pgliteDir,
    blobStore,
    // Beside the embedded database by default (.fuss/db -> .fuss/blobs).
    blobDir: overrides.blobDir ?? env.FUSS_BLOB_DIR ?? join(pgliteDir.startsWith('memory://') ? '.fuss' : dirname(pgliteDir.replace(/\/+$/, '')), 'blobs'),
    adminToken: overrides.adminToken ?? (env.FUSS_ADMIN_TOKEN || undefined),
    metricsToken: overrides.metricsToken ?? (env.FUSS_METRICS_TOKEN || undefined),
    limits: readLimits(env, overrides.limits ?? {}),
    logLevel: overrides.logLevel ?? env.LOG_LEVEL ?? 'info',
  };
  if (!config.adminToken && !isLoopback(config.host)) {
    throw new ConfigurationError(`refusing to listen on ${config.host} without FUSS_ADMIN_TOKEN: anyone on the network could create federations`);
  }
  if (config.adminToken && config.adminToken.length < 16) throw new ConfigurationError('FUSS_ADMIN_TOKEN must be at least 16 characters');
  if (config.metricsToken && config.metricsToken.length < 16) throw new ConfigurationError('FUSS_METRICS_TOKEN must be at least 16 characters');
  if (config.blobStore === 'postgres' && !config.databaseUrl) throw new ConfigurationError('FUSS_BLOB_STORE=postgres needs DATABASE_URL');
  return config;
}
