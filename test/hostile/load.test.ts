// Load on a real `fuss server` process: PARTICIPANTS participants join and upload 2.8 MB updates
// (C = 768, D = 70, K = 11, the CamVid model's shape) for ROUNDS rounds while SEGMENT_CLIENTS clients
// keep sending 480x360 images to /segment. /healthz must keep answering within the stated bounds,
// every update must count, /segment must answer 200 or 503 with Retry-After (never anything else),
// and the server's memory must stay bounded. Also: stored updates of old rounds are pruned, so the
// embedded database and the blob folder stop growing.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { Backbone, featureConfigKey } from '@fuss/core';
import { buildTinyCnn } from '../../services/core/src/test-support/tiny-backbones.js';
import { adminHeaders, startServer, stop, waitForRoundClosed, type ServerProcess } from '../e2e/server-helper.js';
import { modelBytes } from './attacks.js';
import { underWatch } from './harness.js';
import { POSTGRES_URL, postgresAvailable } from '../../services/aggregator/src/test-support/databases.js';

const PARTICIPANTS = 8;
const ROUNDS = 3;
const SEGMENT_CLIENTS = 4;
/**
 * Bounds on /healthz while all of it runs (sequential probe from its own thread). Measured on the
 * development machine (2 cores, shared with other work): p99 180-250 ms, max 340-950 ms; the median
 * stays near 20 ms. The two cores are the limit here: the database, the upload checks, the
 * aggregation and the /segment worker all run beside the event loop.
 */
const HEALTH_P99_MS = 300;
const HEALTH_MAX_MS = 1000;
const RSS_GROWTH_MIB = 600;
const onPostgres = await postgresAvailable();

let dir = '';
let modelPath = '';
let server: ServerProcess;
let backbone: { id: string; sha256: string; featureKey: string; channels: number };

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fuss-load-'));
  modelPath = join(dir, 'tiny-cnn.onnx');
  await writeFile(modelPath, buildTinyCnn());
  const opened = await Backbone.open(modelPath);
  backbone = { id: 'tiny-cnn', sha256: opened.descriptor.sha256, featureKey: featureConfigKey(opened.descriptor), channels: await opened.featureChannels() };
  await opened.close();
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A new schema on the test Postgres server for one server process. */
async function freshSchema() {
  const { default: pg } = await import('pg');
  const name = `load_${Date.now().toString(36)}`;
  const client = new pg.Client({ connectionString: POSTGRES_URL });
  await client.connect();
  await client.query(`CREATE SCHEMA "${name}"`);
  const url = new URL(POSTGRES_URL);
  url.searchParams.set('schema', name);
  return {
    url: url.toString(),
    blobBytes: async () => Number((await client.query(`SELECT coalesce(sum("size"), 0) AS bytes FROM "${name}"."Blob"`)).rows[0].bytes),
    drop: async () => {
      await client.query(`DROP SCHEMA "${name}" CASCADE`);
      await client.end();
    },
  };
}

async function create(body: object): Promise<{ id: string; tokens: string[] }> {
  const { id } = (await (await fetch(`${server.url}/v1/federations`, { method: 'POST', headers: adminHeaders, body: JSON.stringify(body) })).json()) as { id: string };
  const tokens: string[] = [];
  const count = (body as { maxParticipants: number }).maxParticipants;
  for (let i = 0; i < count; i++) {
    tokens.push(((await (await fetch(`${server.url}/v1/federations/${id}/participants`, { method: 'POST', headers: adminHeaders, body: JSON.stringify({ name: `site-${i}` }) })).json()) as { token: string }).token);
  }
  return { id, tokens };
}

async function folderBytes(path: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(path, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) total += (await stat(join(entry.parentPath, entry.name))).size;
  }
  return total;
}

const databases: [string, boolean][] = [['embedded PGlite', true], ['Postgres', onPostgres]];

describe.each(databases)('participants and /segment clients at once on %s', (label, available) => {
  let schema: Awaited<ReturnType<typeof freshSchema>> | undefined;
  beforeAll(async () => {
    if (!available) return;
    schema = label === 'Postgres' ? await freshSchema() : undefined;
    // One waiting /segment request at most, so that the clients also meet the 503 answer.
    server = await startServer({ FUSS_KEEP_UPDATE_ROUNDS: '1', FUSS_SEGMENT_QUEUE: '1', ...(schema ? { DATABASE_URL: schema.url } : {}) }, ['--db-dir', join(dir, `db-${label.length}`), '--backbone', modelPath]);
  });
  afterAll(async () => {
    if (server) await stop(server.child);
    await schema?.drop();
  });

  it.skipIf(!available)('keep /healthz answering, count every update, and answer /segment with 200 or 503', async () => {
    const shape = { channels: 768, codeDim: 70, k: 11 };
    const training = await create({ name: 'load', backbone: { ...backbone, channels: shape.channels }, codeDim: shape.codeDim, k: shape.k, rounds: ROUNDS, localSteps: 1, maxParticipants: PARTICIPANTS, strategy: 'fedcc-kmeans', serverOptimizer: 'none' }); // the storage bound below counts model files only (a server optimiser adds its state per version)
    const segmenting = await create({ name: 'seg', backbone, codeDim: 4, k: 3, rounds: 1, localSteps: 1, maxParticipants: 1 });
    const bodies = Array.from({ length: ROUNDS }, (_, r) => Array.from({ length: PARTICIPANTS }, (_, i) => modelBytes({ backbone }, 100 + i, shape, r + 1)));
    const image = await sharp({ create: { width: 480, height: 360, channels: 3, background: { r: 30, g: 120, b: 60 } } }).composite([{ input: Buffer.from('<svg width="480" height="360"><circle cx="200" cy="150" r="90" fill="white"/></svg>') }]).jpeg().toBuffer();
    const statuses = new Map<number, number>();
    let segmentRetryAfterMissing = 0;
    let running = true;

    const watched = await underWatch(server.url, server.child.pid!, async () => {
      const segmentClients = Array.from({ length: SEGMENT_CLIENTS }, async () => {
        while (running) {
          const response = await fetch(`${server.url}/segment?federation=${segmenting.id}`, { method: 'POST', headers: { authorization: `Bearer ${segmenting.tokens[0]}`, 'content-type': 'image/jpeg' }, body: image });
          await response.arrayBuffer();
          statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
          if (response.status === 503 && !response.headers.get('retry-after')) segmentRetryAfterMissing++;
          if (response.status === 503) await new Promise((resolve) => setTimeout(resolve, 50));
        }
      });
      const participants = training.tokens.map(async (token, i) => {
        const headers = { authorization: `Bearer ${token}` };
        for (let round = 1; round <= ROUNDS; round++) {
          // As the SDK does: wait as long as the server's Retry-After says (at most 1 s here).
          for (;;) {
            const join = (await (await fetch(`${server.url}/v1/federations/${training.id}/rounds/current/join`, { method: 'POST', headers })).json()) as { status: string; round?: number; retryAfterSeconds?: number };
            if (join.status === 'open' && join.round === round) break;
            await new Promise((resolve) => setTimeout(resolve, Math.min(1000, (join.retryAfterSeconds ?? 1) * 1000)));
          }
          const model = await fetch(`${server.url}/v1/federations/${training.id}/models/latest`, { headers });
          await model.arrayBuffer();
          const upload = await fetch(`${server.url}/v1/federations/${training.id}/rounds/${round}/update?samples=${10 + i}`, { method: 'PUT', headers: { ...headers, 'content-type': 'application/octet-stream' }, body: bodies[round - 1][i] });
          expect(upload.status, await upload.text()).toBe(201);
        }
      });
      await Promise.all(participants);
      const history = await waitForRoundClosed(server.url, training.id, ROUNDS, 60_000);
      running = false;
      await Promise.all(segmentClients);
      return history;
    });

    const context = JSON.stringify({ health: watched.health, rss: [watched.rssBeforeMiB, watched.rssPeakMiB], statuses: Object.fromEntries(statuses), seconds: watched.seconds });
    console.log(`load: ${context}`);
    expect(watched.result.map((r) => [r.number, r.state, r.updates]), context).toEqual(Array.from({ length: ROUNDS }, (_, i) => [i + 1, 'closed', PARTICIPANTS]));
    expect([...statuses.keys()].every((status) => status === 200 || status === 503), context).toBe(true);
    expect(statuses.get(200) ?? 0, context).toBeGreaterThan(0);
    expect(segmentRetryAfterMissing).toBe(0);
    expect(watched.health.failures, context).toBe(0);
    expect(watched.health.p99Ms, context).toBeLessThan(HEALTH_P99_MS);
    expect(watched.health.maxMs, context).toBeLessThan(HEALTH_MAX_MS);
    expect(watched.rssPeakMiB - watched.rssBeforeMiB, context).toBeLessThan(RSS_GROWTH_MIB);

    // Updates of rounds older than FUSS_KEEP_UPDATE_ROUNDS = 1 lost their bytes: the store holds the
    // models and the last round's updates only.
    const model = bodies[0][0].length;
    const stored = schema ? await schema.blobBytes() : await folderBytes(join(dir, 'blobs'));
    expect(stored, `blob store ${stored} bytes`).toBeLessThan((ROUNDS + 1 + PARTICIPANTS + 2) * model * 1.05);
    // The embedded database holds no weights at all.
    if (!schema) expect(await folderBytes(join(dir, `db-${label.length}`)), 'PGlite folder').toBeLessThan(80 * 1024 * 1024);
  });
});
