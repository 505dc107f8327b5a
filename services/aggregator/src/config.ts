// Server configuration, read and checked once from the environment (fastify/demo env.ts).

export interface ServerConfig {
  host: string;
  port: number;
  /** postgres:// URL; embedded PGlite in `pgliteDir` when absent. */
  databaseUrl?: string;
  pgliteDir: string;
  /** Token of the administrator (creates federations and participants). */
  adminToken?: string;
  /** Largest accepted request body, bytes. */
  bodyLimit: number;
  logLevel: string;
}

export class ConfigurationError extends Error {}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1']);

export function isLoopback(host: string): boolean {
  return LOOPBACK.has(host) || host.startsWith('127.');
}

export function loadConfig(env: NodeJS.ProcessEnv, overrides: Partial<ServerConfig> = {}): ServerConfig {
  const port = overrides.port ?? Number(env.PORT ?? 8080);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ConfigurationError(`PORT must be an integer in 0..65535 (got ${env.PORT})`);
  const bodyLimit = overrides.bodyLimit ?? Number(env.FUSS_BODY_LIMIT ?? 64 * 1024 * 1024);
  if (!Number.isInteger(bodyLimit) || bodyLimit < 1024) throw new ConfigurationError(`FUSS_BODY_LIMIT must be an integer >= 1024 (got ${env.FUSS_BODY_LIMIT})`);
  const config: ServerConfig = {
    host: overrides.host ?? env.HOST ?? '127.0.0.1',
    port,
    databaseUrl: overrides.databaseUrl ?? (env.DATABASE_URL || undefined),
    pgliteDir: overrides.pgliteDir ?? env.FUSS_DB_DIR ?? '.fuss/db',
    adminToken: overrides.adminToken ?? (env.FUSS_ADMIN_TOKEN || undefined),
    bodyLimit,
    logLevel: overrides.logLevel ?? env.LOG_LEVEL ?? 'info',
  };
  if (!config.adminToken && !isLoopback(config.host)) {
    throw new ConfigurationError(`refusing to listen on ${config.host} without FUSS_ADMIN_TOKEN: anyone on the network could create federations`);
  }
  if (config.adminToken && config.adminToken.length < 16) throw new ConfigurationError('FUSS_ADMIN_TOKEN must be at least 16 characters');
  return config;
}
