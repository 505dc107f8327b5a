// Starts the aggregation server: reads the configuration, opens and migrates the database, starts the
// /segment workers, listens with bounded connections, and shuts down cleanly on SIGINT/SIGTERM.

import { availableParallelism } from 'node:os';
import pino from 'pino';
import type { Server, Socket } from 'node:net';
import { buildApp } from './app.js';
import { ConfigurationError, loadConfig, type ServerConfig, type ServerLimits } from './config.js';
import { openDatabase } from './db/database.js';
import { moveLegacyWeights } from './db/legacy-weights.js';
import { collectGarbage } from './storage/garbage.js';
import { SegmentPool } from './segmentation/worker-pool.js';
import { threadModelComputer } from './aggregation/model-worker.js';
import { Validator } from './evaluation/validator.js';
import { dirname, join } from 'node:path';
import { resolveDevice, type DeviceRequest } from '@fuss/core';

export interface RunningServer {
  url: string;
  close(): Promise<void>;
}

/** At most `max` open connections in all and `perAddress` from one client address; others are dropped. */
export function limitConnections(server: Server, max: number, perAddress: number): void {
  server.maxConnections = max;
  const open = new Map<string, number>();
  server.on('connection', (socket: Socket) => {
    const address = socket.remoteAddress ?? 'unknown';
    const count = (open.get(address) ?? 0) + 1;
    if (count > perAddress) {
      socket.destroy();
      return;
    }
    open.set(address, count);
    socket.once('close', () => {
      const left = (open.get(address) ?? 1) - 1;
      if (left <= 0) open.delete(address);
      else open.set(address, left);
    });
  });
}

export async function startServer(
  overrides: Partial<Omit<ServerConfig, 'limits'>> & { limits?: Partial<ServerLimits> } = {},
  env: NodeJS.ProcessEnv = process.env,
  log: (line: string) => void = () => undefined,
  /**
   * backbonePath enables POST /segment; device (default cpu) is where its backbone and head run.
   * evalDataDir (needs backbonePath) scores every new global version on that labelled dataset.
   */
  options: { backbonePath?: string; device?: DeviceRequest; evalDataDir?: string } = {},
): Promise<RunningServer> {
  const config = loadConfig(env, overrides);
  const { limits } = config;
  // Resolved once here (one log line); the /segment workers open their sessions on it.
  const device = options.backbonePath ? await resolveDevice(options.device ?? 'cpu', { log }) : undefined;
  if (options.evalDataDir && !options.backbonePath) throw new ConfigurationError('--eval-data needs --backbone: validation extracts the features of its images with the federations\' backbone');
  // Beside the embedded database by default (.fuss/db -> .fuss/eval): cached features and scores.
  const evalDir = join(config.pgliteDir.startsWith('memory://') ? '.fuss' : dirname(config.pgliteDir.replace(/\/+$/, '')), 'eval');
  // Started before the /segment workers: a dataset that cannot be used stops the start with nothing left running.
  const validator = options.evalDataDir ? await Validator.start({ datasetDir: options.evalDataDir, backbonePath: options.backbonePath!, dir: evalDir, device, log }) : undefined;
  if (validator) log(`validation: every new global version of federations on this backbone is evaluated on ${validator.dataset.name} (${validator.dataset.images} images in ${options.evalDataDir}); scores in ${evalDir}`);
  const pool = options.backbonePath
    ? await SegmentPool.start({
        backbonePath: options.backbonePath,
        device,
        workers: limits.segmentWorkers,
        queue: limits.segmentQueue,
        // One core is left to the event loop (and the database, when it is embedded).
        threads: Math.max(1, Math.floor((availableParallelism() - 1) / limits.segmentWorkers)),
        timeoutMs: limits.segmentTimeoutMs,
        log,
      })
    : undefined;
  if (pool?.backbone) log(`segmentation backbone: ${pool.backbone.id} (sha256 ${pool.backbone.sha256.slice(0, 12)}...), ${limits.segmentWorkers} worker thread(s)`);
  const db = await openDatabase({ databaseUrl: config.databaseUrl, pgliteDir: config.pgliteDir, blobStore: config.blobStore, blobDir: config.blobDir });
  const applied = await db.migrate();
  log(`database: ${db.kind === 'postgres' ? 'Postgres (DATABASE_URL)' : `embedded PGlite in ${config.pgliteDir}`}${applied.length ? `, applied migrations ${applied.join(', ')}` : ''}; weights in ${db.blobs.kind === 'file' ? config.blobDir : 'the Postgres "Blob" table'}`);
  const moved = await moveLegacyWeights(db);
  if (moved > 0) log(`moved the weights of ${moved} stored updates and models into the blob store`);
  const collected = await collectGarbage(db);
  if (collected > 0) log(`deleted ${collected} weight files that no update or model names`);
  const modelComputer = threadModelComputer(log);
  const logStream = pino.destination({ dest: 2, sync: false, minLength: 4096 });
  const app = await buildApp({
    db,
    config,
    modelComputer,
    // Buffered writes to stderr: a line per request must not cost a blocking write each.
    logger: { level: config.logLevel, redact: ['req.headers.authorization'], stream: logStream },
    sweepIntervalMs: 1000,
    segmentPool: pool,
    validator,
    timeouts: limits,
  });
  limitConnections(app.server, limits.maxConnections, limits.maxConnectionsPerIp);
  await app.listen({ host: config.host, port: config.port });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const url = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;
  if (!config.adminToken) log('no FUSS_ADMIN_TOKEN: admin routes are open to local users (requests addressed to a loopback name only)');
  log(`listening on ${url} (API docs at ${url}/docs)`);
  // The token itself is never printed: logs are kept and shared; the page asks for it (or takes /#token=...).
  log(`dashboard: ${url}/${config.adminToken ? ' (sign in with FUSS_ADMIN_TOKEN or a participant token)' : ''}`);
  return {
    url,
    close: async () => {
      await validator?.close();
      await app.close();
      await modelComputer.close();
      await db.close();
      await pool?.close();
      logStream.flushSync();
    },
  };
}
