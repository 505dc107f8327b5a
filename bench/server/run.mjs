// Aggregation server benchmark: (1) uploads per second and p50/p99 latency for N concurrent
// participants sending ViT-B-sized updates (C = 768, D = 70, K = 27: about 2.8 MB) over loopback HTTP,
// on Postgres and on PGlite; (2) aggregation time and peak RSS for 10, 100 and 1000 updates in a
// round; (3) POST /segment latency against the backbone + head compute alone (server overhead).
// Usage: node --expose-gc bench/server/run.mjs [--concurrency 8] [--uploads 64] [--aggregate 10,100,1000]
//        [--aggregate-pglite 10,100] [--databases pglite,postgres,postgres-file] [--parts uploads,aggregate,segment] [--profile DIR]

import { parseArgs } from 'node:util';
import { mkdir, mkdtemp, open, rename, rm, readFile, writeFile } from 'node:fs/promises';
import { spawn } from 'node:child_process';
import Fastify from 'fastify';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { buildApp, openDatabase, SegmentPool } from '@fuss/aggregator';
import {
  Backbone, assignPixels, createEngine, createRng, encodeModel, featureConfigKey, headCodeFunction, initCentroids, initHead, normalizeRows, readImageSize,
} from '@fuss/core';
import { median, printTable, sharedAssets, writeResults } from '../common.mjs';

const { values } = parseArgs({
  options: {
    concurrency: { type: 'string', default: '8' },
    uploads: { type: 'string', default: '64' },
    aggregate: { type: 'string', default: '10,100,1000' },
    // PGlite moves bytea at about 2 MB/s (its own text encoding): 1000 updates would take most of an hour.
    'aggregate-pglite': { type: 'string', default: '10,100' },
    parts: { type: 'string', default: 'uploads,aggregate,segment' },
    databases: { type: 'string', default: 'pglite,postgres' },
    strategy: { type: 'string', default: 'fedcc-kmeans' },
    // Writes V8 CPU profiles of the Postgres aggregation child (every thread) into this folder, and of
    // the server's main thread during each upload row (uploads-<database>.cpuprofile).
    profile: { type: 'string' },
  },
});
const ADMIN = 'bench-admin-token-0123456789';
const parts = values.parts.split(',');
const SHAPE = { channels: 768, codeDim: 70, k: 27 };
const SHA = 'f'.repeat(64);
const auth = (token) => ({ authorization: `Bearer ${token}` });
const percentile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];

function updateBytes(seed) {
  const rng = createRng(seed);
  return Buffer.from(encodeModel({ head: initHead(SHAPE, rng), centroids: initCentroids(SHAPE.k, SHAPE.codeDim, rng), ...SHAPE, backbone: { id: 'vitb8-shaped', sha256: SHA, featureKey: 'bench' }, round: 1, version: 0 }));
}

async function openBenchDatabase(kind) {
  if (kind === 'pglite') {
    const dir = await mkdtemp(join(tmpdir(), 'fuss-bench-db-'));
    const db = await openDatabase({ pgliteDir: dir });
    return { db, dispose: async () => { await db.close(); await rm(dir, { recursive: true, force: true }); } };
  }
  const { default: pg } = await import('pg');
  const base = process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/test';
  const schema = `bench_${randomBytes(5).toString('hex')}`;
  const admin = new pg.Client({ connectionString: base });
  await admin.connect();
  await admin.query(`CREATE SCHEMA "${schema}"`);
  const url = new URL(base);
  url.searchParams.set('schema', schema);
  // postgres-file: Postgres for the rows, the file blob store for the weights (one server).
  const blobDir = kind === 'postgres-file' ? await mkdtemp(join(tmpdir(), 'fuss-bench-blobs-')) : undefined;
  const db = await openDatabase({ databaseUrl: url.toString(), ...(blobDir ? { blobStore: 'file', blobDir } : {}) });
  db.url = url.toString();
  return { db, dispose: async () => { await db.close(); await admin.query(`DROP SCHEMA "${schema}" CASCADE`); await admin.end(); if (blobDir) await rm(blobDir, { recursive: true, force: true }); } };
}

async function createFederation(base, maxParticipants, participants) {
  const response = await fetch(`${base}/v1/federations`, {
    method: 'POST',
    headers: { ...auth(ADMIN), 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'bench', backbone: { id: 'vitb8-shaped', sha256: SHA, featureKey: 'bench', channels: SHAPE.channels }, codeDim: SHAPE.codeDim, k: SHAPE.k, rounds: 1, localSteps: 1, maxParticipants, strategy: values.strategy }),
  });
  const { id } = await response.json();
  const tokens = [];
  for (let i = 0; i < participants; i++) {
    const r = await fetch(`${base}/v1/federations/${id}/participants`, { method: 'POST', headers: { ...auth(ADMIN), 'content-type': 'application/json' }, body: JSON.stringify({ name: `p${i}` }) });
    tokens.push((await r.json()).token);
  }
  return { id, tokens };
}

const rows = [];
const update = updateBytes(1);
console.error(`update size: ${(update.length / 1e6).toFixed(2)} MB`);
const scratch = await mkdtemp(join(tmpdir(), 'fuss-bench-uploads-'));
const updatePath = join(scratch, 'update.safetensors');
await writeFile(updatePath, update);

/** Profiles this process's main thread while `work` runs, into `<--profile>/<name>.cpuprofile`. */
async function profiled(name, work) {
  if (!values.profile) return work();
  const { Session } = await import('node:inspector/promises');
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
  try {
    return await work();
  } finally {
    const { profile } = await session.post('Profiler.stop');
    await mkdir(values.profile, { recursive: true });
    await writeFile(join(values.profile, `${name}.cpuprofile`), JSON.stringify(profile));
    session.disconnect();
  }
}

/** Runs the uploads from a client process of its own (bench/server/upload-client.mjs): every token uploads once. */
async function runUploadClients(url, tokens, concurrency) {
  const child = spawn(process.execPath, [join(import.meta.dirname, 'upload-client.mjs')], { stdio: ['pipe', 'pipe', 'inherit'] });
  child.stdin.end(JSON.stringify({ url, tokens, concurrency, updatePath }));
  let output = '';
  for await (const chunk of child.stdout) output += chunk;
  const code = await new Promise((resolve) => child.once('exit', resolve));
  if (code !== 0) throw new Error(`the upload client failed (exit code ${code})`);
  return JSON.parse(output.trim().split('\n').at(-1));
}

// The ceiling of the machine for the same uploads: a plain Fastify route that streams each body to a
// file, fsyncs and renames it (what the file blob store does), with no authentication, checks or database.
if (parts.includes('uploads')) {
  const app = Fastify({ logger: false, bodyLimit: 64 << 20 });
  app.addContentTypeParser('application/octet-stream', (_request, payload, done) => done(null, payload));
  let counter = 0;
  app.put('/upload', async (request, reply) => {
    const path = join(scratch, `upload-${counter++}`);
    const handle = await open(`${path}.tmp`, 'wx');
    try {
      for await (const piece of request.body) await handle.write(piece);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(`${path}.tmp`, path);
    return reply.status(201).send({ ok: true });
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const uploads = Number(values.uploads);
  const concurrency = Number(values.concurrency);
  const { seconds, latencies } = await profiled('uploads-ceiling', () => runUploadClients(`http://127.0.0.1:${app.server.address().port}/upload`, Array.from({ length: uploads }, (_, i) => `t${i}`), concurrency));
  await app.close();
  rows.push({ database: 'none (ceiling)', work: `${uploads} uploads, ${concurrency} concurrent: body to a file, fsync, rename`, result: `${(uploads / seconds).toFixed(1)} uploads/s, ${(uploads * update.length / 1e6 / seconds).toFixed(0)} MB/s`, p50: `${percentile(latencies, 0.5).toFixed(0)} ms`, p99: `${percentile(latencies, 0.99).toFixed(0)} ms`, 'peak RSS': '' });
  console.error(JSON.stringify(rows.at(-1)));
}
for (const kind of values.databases.split(',')) {
  const { db, dispose } = await openBenchDatabase(kind);
  await db.migrate();
  const app = await buildApp({ db, config: { adminToken: ADMIN }, logger: { level: 'error' } });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const base = `http://127.0.0.1:${app.server.address().port}`;

  // (1) Upload throughput: every participant uploads once; the round never fills, so no aggregation.
  if (parts.includes('uploads')) {
  const uploads = Number(values.uploads);
  const concurrency = Number(values.concurrency);
  const { id, tokens } = await createFederation(base, uploads + 1, uploads);
  const { seconds, latencies } = await profiled(`uploads-${kind}`, () => runUploadClients(`${base}/v1/federations/${id}/rounds/1/update?samples=10`, tokens, concurrency));
  rows.push({ database: kind, work: `${uploads} uploads, ${concurrency} concurrent`, result: `${(uploads / seconds).toFixed(1)} uploads/s, ${(uploads * update.length / 1e6 / seconds).toFixed(0)} MB/s`, p50: `${percentile(latencies, 0.5).toFixed(0)} ms`, p99: `${percentile(latencies, 0.99).toFixed(0)} ms`, 'peak RSS': '' });
  console.error(JSON.stringify(rows.at(-1)));
  }

  // (2) Aggregation of n updates, stored directly (the HTTP path is measured above).
  // (postgres-file: uploads only; the aggregation child reads blobs from Postgres.)
  const sizes = !parts.includes('aggregate') || kind === 'postgres-file' ? [] : (kind === 'pglite' ? values['aggregate-pglite'] : values.aggregate).split(',').map(Number);
  for (const n of sizes) {
    const { id: fid } = await createFederation(base, n + 1, 0);
    const round = await db.prisma.round.findFirstOrThrow({ where: { federationId: fid, number: 1 } });
    // Every stored update names the same blob (the store keeps one copy); each is read and decoded anew.
    const updateSha = await db.blobs.put(update);
    for (let i = 0; i < n; i += 50) {
      const batch = [];
      for (let j = i; j < Math.min(n, i + 50); j++) {
        const participant = await db.prisma.participant.create({ data: { federationId: fid, name: `a${j}`, enrolmentIndex: j, tokenHash: randomBytes(32).toString('hex') } });
        batch.push({ roundId: round.id, participantId: participant.id, samples: 10 + (j % 7), sha256: updateSha, size: update.length });
      }
      await db.prisma.update.createMany({ data: batch });
    }
    let measured;
    if (kind.startsWith('postgres')) {
      // In a process of its own, so the peak RSS is the aggregation's alone.
      const { execFileSync } = await import('node:child_process');
      const output = execFileSync(process.execPath, [...(values.profile ? ['--cpu-prof', `--cpu-prof-dir=${values.profile}`] : []), '--expose-gc', join(import.meta.dirname, 'aggregate-round.mjs'), db.url, round.id], { encoding: 'utf8', maxBuffer: 1 << 20 });
      measured = JSON.parse(output.trim().split('\n').at(-1));
      console.error(`aggregation of ${n}: ${JSON.stringify(measured)}`);
    } else {
      // PGlite lives in this process: the RSS includes the embedded database's heap.
      global.gc?.();
      const rssBefore = process.memoryUsage().rss;
      let peak = rssBefore;
      const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
      const t = performance.now();
      const done = await app.rounds.aggregate(round.id);
      clearInterval(sampler);
      measured = { done, seconds: (performance.now() - t) / 1000, rssBeforeMiB: rssBefore / 2 ** 20, peakRssMiB: Math.max(peak, process.memoryUsage().rss) / 2 ** 20 };
    }
    if (!measured.done) throw new Error('aggregation did not run');
    rows.push({ database: kind, work: `aggregate ${n} updates (${values.strategy})`, result: `${measured.seconds.toFixed(2)} s`, p50: '', p99: '', 'peak RSS': `${measured.peakRssMiB.toFixed(0)} MiB (+${(measured.peakRssMiB - measured.rssBeforeMiB).toFixed(0)})${kind === 'postgres' ? ', own process' : ', with PGlite'}` });
    await db.prisma.update.deleteMany({ where: { roundId: round.id } });
    console.error(JSON.stringify(rows.at(-1)));
  }
  await app.close();
  await dispose();
}

// (3) /segment latency against the compute alone, with the MobileNetV2 backbone on a CamVid image.
if (parts.includes('segment')) {
const assets = sharedAssets();
// The compute alone on the same single thread the server's worker gets.
const backbone = await Backbone.open(assets.mobilenet, { threads: 1 });
const engine = await createEngine('onnx', { threads: 1 });
const dbs = await openBenchDatabase('pglite');
await dbs.db.migrate();
// As fuss server runs it: one worker thread with all but one core.
const pool = await SegmentPool.start({ backbonePath: assets.mobilenet, workers: 1, queue: 8, threads: 1, timeoutMs: 30_000 });
const app = await buildApp({ db: dbs.db, config: { adminToken: ADMIN }, segmentPool: pool });
await app.listen({ host: '127.0.0.1', port: 0 });
const base = `http://127.0.0.1:${app.server.address().port}`;
const created = await fetch(`${base}/v1/federations`, { method: 'POST', headers: { ...auth(ADMIN), 'content-type': 'application/json' }, body: JSON.stringify({ name: 'seg', backbone: { id: backbone.descriptor.id, sha256: backbone.descriptor.sha256, featureKey: featureConfigKey(backbone.descriptor), channels: 768 }, k: 11, rounds: 1, localSteps: 1, maxParticipants: 1 }) });
const fid = (await created.json()).id;
const image = await readFile(join(assets.val, 'images', '0016E5_07959.jpg')).catch(async () => readFile((await import('node:fs')).readdirSync(join(assets.val, 'images')).map((f) => join(assets.val, 'images', f))[0]));
const http = [];
const compute = [];
const rng = createRng(0);
const head = initHead({ channels: 768, codeDim: 70 }, rng);
const centroids = normalizeRows(initCentroids(11, 70, rng), 11, 70);
// The compute alone, then the requests, then the compute alone again, each block after 3 warm-ups: interleaving
// them made each disturb the other (two onnxruntime sessions taking turns on the caches), which read as server
// overhead; a block on one side only lets the machine's drift (this VM's CPU steal) read as overhead too.
const computeBlock = async () => {
  for (let i = 0; i < 23; i++) {
    const t = performance.now();
    const size = await readImageSize(image);
    const codes = await headCodeFunction(engine, head, 768, 70)(await backbone.extract(image));
    assignPixels(codes, centroids, 11, size.width, size.height);
    if (i >= 3) compute.push(performance.now() - t);
  }
};
await computeBlock();
for (let i = 0; i < 23; i++) {
  const t = performance.now();
  const r = await fetch(`${base}/segment?federation=${fid}`, { method: 'POST', headers: { ...auth(ADMIN), 'content-type': 'image/jpeg' }, body: image });
  await r.arrayBuffer();
  if (i >= 3) http.push(performance.now() - t);
}
await computeBlock();
// With --profile: 20 more requests alone, the server's main thread profiled (segment.cpuprofile).
await profiled('segment', async () => {
  for (let i = 0; values.profile && i < 20; i++) await (await fetch(`${base}/segment?federation=${fid}`, { method: 'POST', headers: { ...auth(ADMIN), 'content-type': 'image/jpeg' }, body: image })).arrayBuffer();
});
rows.push({ database: 'pglite', work: 'POST /segment 480x360 JPEG (PNG mask)', result: `median ${median(http).toFixed(1)} ms`, p50: `compute alone ${median(compute).toFixed(1)} ms`, p99: `overhead ${(median(http) - median(compute)).toFixed(1)} ms`, 'peak RSS': '' });
await app.close();
await pool.close();
await dbs.dispose();
await engine.dispose();
await backbone.close();
}
await rm(scratch, { recursive: true, force: true });
printTable(rows);
console.log(`written ${writeResults('server', { updateBytes: update.length, concurrency: Number(values.concurrency), uploads: Number(values.uploads), strategy: values.strategy, rows })}`);
