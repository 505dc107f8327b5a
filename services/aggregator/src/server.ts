// Starts the aggregation server: reads the configuration, opens and migrates the database, listens,
// and shuts down cleanly on SIGINT/SIGTERM.

import { buildApp } from './app.js';
import { loadConfig, type ServerConfig } from './config.js';
import { openDatabase } from './db/database.js';
import { Backbone, createEngine, resolveDevice, type DeviceRequest } from '@fuss/core';

export interface RunningServer {
  url: string;
  close(): Promise<void>;
}

export async function startServer(
  overrides: Partial<ServerConfig> = {},
  env: NodeJS.ProcessEnv = process.env,
  log: (line: string) => void = () => undefined,
  /** backbonePath enables POST /segment; device (default cpu) is where its backbone and head run. */
  options: { backbonePath?: string; device?: DeviceRequest } = {},
): Promise<RunningServer> {
  const config = loadConfig(env, overrides);
  const device = options.backbonePath ? await resolveDevice(options.device ?? 'cpu', { log }) : undefined;
  const backbone = options.backbonePath ? await Backbone.open(options.backbonePath, { device, log }) : undefined;
  const engine = backbone ? await createEngine('onnx', { device, log }) : undefined;
  if (backbone) log(`segmentation backbone: ${backbone.descriptor.id} (sha256 ${backbone.descriptor.sha256.slice(0, 12)}...)`);
  const db = await openDatabase({ databaseUrl: config.databaseUrl, pgliteDir: config.pgliteDir });
  const applied = await db.migrate();
  log(`database: ${db.kind === 'postgres' ? 'Postgres (DATABASE_URL)' : `embedded PGlite in ${config.pgliteDir}`}${applied.length ? `, applied migrations ${applied.join(', ')}` : ''}`);
  const app = await buildApp({
    db,
    config,
    logger: { level: config.logLevel, redact: ['req.headers.authorization'] },
    sweepIntervalMs: 1000,
    backbone,
    engine,
  });
  await app.listen({ host: config.host, port: config.port });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const url = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;
  if (!config.adminToken) log('no FUSS_ADMIN_TOKEN: admin routes are open to local users (loopback only)');
  log(`listening on ${url} (API docs at ${url}/docs)`);
  return {
    url,
    close: async () => {
      await app.close();
      await db.close();
      await engine?.dispose();
      await backbone?.close();
    },
  };
}
