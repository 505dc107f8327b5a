// Hostile requests (issue #10's table, test/hostile/attacks.ts) against a real `fuss server` process:
// for each row, what the server answered, how fast, the slowest /healthz answer while it ran (a probe
// in its own thread, 20 ms apart), and the server's peak RSS. With --baseline DIR the same rows run
// against an older checkout's build (DIR/cli/bin/fuss.js) in the same run, side by side.
// Usage: node bench/hostile/run.mjs [--baseline ../fuss-before] [--rows a,b] [--patience 30000]

import { parseArgs } from 'node:util';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { register } from 'tsx/esm/api';
import { Backbone, featureConfigKey } from '@fuss/core';
import { machine, printTable, writeResults } from '../common.mjs';

register();
const { ATTACKS, modelBytes } = await import('../../test/hostile/attacks.ts');
const { underWatch } = await import('../../test/hostile/harness.ts');
const { buildTinyCnn } = await import('../../services/core/src/test-support/tiny-backbones.ts');

const { values } = parseArgs({ options: { baseline: { type: 'string' }, rows: { type: 'string' }, patience: { type: 'string', default: '30000' } } });
const ADMIN = 'bench-hostile-admin-token-0123456789';
const here = fileURLToPath(new URL('.', import.meta.url));
const patienceMs = Number(values.patience);
const work = await mkdtemp(join(tmpdir(), 'fuss-hostile-bench-'));

// /segment runs the CamVid backbone when the shared assets are there (a realistic compute), else a tiny one.
const shared = resolve(process.env.FUSS_ASSETS ?? join(here, '..', '..', '..', 'shared'), 'models', 'mobilenetv2-int8-features.onnx');
let backbonePath = shared;
if (!existsSync(shared)) {
  backbonePath = join(work, 'tiny-cnn.onnx');
  await writeFile(backbonePath, buildTinyCnn());
}
const opened = await Backbone.open(backbonePath);
const backbone = { id: opened.descriptor.id, sha256: opened.descriptor.sha256, featureKey: featureConfigKey(opened.descriptor), channels: await opened.featureChannels() };
await opened.close();

async function startServer(bin, label, env = {}) {
  const dbDir = join(work, `${label}-${Date.now()}`);
  const child = spawn(process.execPath, [bin, 'server', '--port', '0', '--db-dir', dbDir, '--backbone', backbonePath], {
    env: { ...process.env, FUSS_ADMIN_TOKEN: ADMIN, DATABASE_URL: '', LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  const url = await new Promise((resolveUrl, reject) => {
    const timer = setInterval(() => {
      const match = /listening on (http:\/\/\S+)/.exec(output);
      if (match) {
        clearInterval(timer);
        resolveUrl(match[1]);
      }
    }, 50);
    child.on('exit', (code) => reject(new Error(`${label} server exited with ${code}: ${output.slice(-2000)}`)));
  });
  const headers = { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' };
  const federation = await (await fetch(`${url}/v1/federations`, { method: 'POST', headers, body: JSON.stringify({ name: 'hostile', backbone, k: 11, rounds: 3, localSteps: 1, maxParticipants: 3 }) })).json();
  const participant = await (await fetch(`${url}/v1/federations/${federation.id}/participants`, { method: 'POST', headers, body: JSON.stringify({ name: 'site-a' }) })).json();
  return { child, url, target: { url, adminToken: ADMIN, federationId: federation.id, participantToken: participant.token, backbone } };
}

/** N participants upload one update each (model of `shape`); the round aggregates; returns how it went. */
async function aggregation(target, shape, participants) {
  const headers = { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' };
  const started = performance.now();
  const created = await fetch(`${target.url}/v1/federations`, { method: 'POST', headers, body: JSON.stringify({ name: `agg-${Date.now()}`, backbone: { ...target.backbone, channels: shape.channels }, codeDim: shape.codeDim, k: shape.k, rounds: 1, localSteps: 1, maxParticipants: participants, strategy: 'fedcc-kmeans' }) });
  if (created.status !== 201) return { status: created.status, ms: Math.round(performance.now() - started), note: (await created.text()).slice(0, 120) };
  const { id } = await created.json();
  const bodies = [];
  for (let i = 0; i < participants; i++) {
    const { token } = await (await fetch(`${target.url}/v1/federations/${id}/participants`, { method: 'POST', headers, body: JSON.stringify({ name: `p${i}` }) })).json();
    bodies.push([token, modelBytes(target, 1000 + i, shape)]);
  }
  let status;
  for (const [token, body] of bodies) {
    const r = await fetch(`${target.url}/v1/federations/${id}/rounds/1/update?samples=10`, { method: 'PUT', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' }, body });
    status = r.status;
    await r.arrayBuffer();
    if (status !== 201) return { status, ms: Math.round(performance.now() - started), note: 'upload refused' };
  }
  for (;;) {
    const rounds = (await (await fetch(`${target.url}/v1/federations/${id}/rounds`, { headers })).json()).rounds;
    if (rounds[0].state === 'closed' || rounds[0].state === 'failed') return { status, ms: Math.round(performance.now() - started), note: `round ${rounds[0].state}` };
    if (performance.now() - started > patienceMs * 4) return { status, ms: Math.round(performance.now() - started), note: `round still ${rounds[0].state}` };
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Allowed images of random sizes up to the pixel limit, in every format: the memory they leave behind. */
async function allowedSequence(target) {
  const { pngBomb } = await import('../../test/hostile/attacks.ts');
  let seed = 7;
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const started = performance.now();
  const statuses = new Set();
  for (let i = 0; i < 12; i++) {
    const megapixels = i === 0 ? 25 : 0.2 + random() * 24.8;
    const width = Math.round(Math.sqrt(megapixels * 1e6 * (0.6 + random() * 0.8)));
    const height = Math.floor((megapixels * 1e6) / width);
    const format = megapixels <= 4 ? 'json' : i % 2 ? 'overlay' : 'png';
    const r = await fetch(`${target.url}/segment?federation=${target.federationId}&format=${format}`, { method: 'POST', headers: { authorization: `Bearer ${target.participantToken}`, 'content-type': 'image/png' }, body: await pngBomb(width, height) });
    await r.arrayBuffer();
    statuses.add(r.status);
  }
  return { status: statuses.size === 1 ? [...statuses][0] : undefined, ms: Math.round(performance.now() - started), note: `statuses ${[...statuses].join(',')}` };
}

const extraRows = [
  { name: 'allowed-images-sequence', row: '12 allowed images, 0.2 to 25 MP, png/json/overlay (memory left behind)', afterOnly: true, run: (t) => allowedSequence(t) },
  { name: 'aggregate-10-updates', row: 'aggregation of 10 updates (2.8 MB) on PGlite', run: (t) => aggregation(t, { channels: 768, codeDim: 70, k: 11 }, 10) },
  { name: 'aggregate-51mb-model', row: 'a 51 MB model (C = 3500): 2 uploads, aggregation and commit', run: (t) => aggregation(t, { channels: 3500, codeDim: 70, k: 11 }, 2) },
];
const rows = [...ATTACKS, ...extraRows].filter((a) => !values.rows || values.rows.split(',').includes(a.name));

async function runAll(bin, label) {
  let server = await startServer(bin, label);
  const results = {};
  for (const attack of rows) {
    if (attack.afterOnly && label !== 'after') continue;
    // A server that breaks the connection (or dies) is a result too, not the end of the run.
    const prepared = await attack.prepare?.(server.target);
    const watched = await underWatch(server.url, server.child.pid, async () => {
      const started = performance.now();
      try {
        return await attack.run(server.target, { patienceMs }, prepared);
      } catch (err) {
        return { ms: Math.round(performance.now() - started), note: `client saw: ${err.cause?.code ?? err.message}` };
      }
    });
    const exited = server.child.exitCode !== null || await new Promise((r) => setTimeout(() => r(server.child.exitCode !== null), 200));
    results[attack.name] = { ...watched.result, healthMaxMs: Math.round(watched.health.maxMs), healthFailures: watched.health.failures, rssBeforeMiB: Math.round(watched.rssBeforeMiB), rssPeakMiB: Math.round(watched.rssPeakMiB), rssAfterMiB: Math.round(watched.rssAfterMiB), serverExited: exited };
    console.error(`${label} ${attack.name}: ${JSON.stringify(results[attack.name])}`);
    if (exited) server = await startServer(bin, label);
  }
  server.child.kill('SIGTERM');
  return results;
}

const describe = (r) => {
  if (!r) return '';
  const outcome = r.status ?? (r.closed ? 'closed' : r.note?.startsWith('client saw') ? r.note.replace('client saw: ', '') : undefined);
  const what = outcome === undefined ? `still open after ${patienceMs} ms` : `${outcome} in ${r.ms} ms`;
  return `${what}${r.serverExited ? ', server died' : ''}`;
};
const health = (r) => !r ? '' : `${r.healthMaxMs} ms${r.healthFailures ? ` (${r.healthFailures} failed)` : ''}`;
const memory = (r) => !r ? '' : `${r.rssPeakMiB} MiB (+${r.rssPeakMiB - r.rssBeforeMiB})`;
const left = (r) => !r ? '' : `${r.rssAfterMiB} MiB`;

const after = await runAll(join(here, '..', '..', 'cli', 'bin', 'fuss.js'), 'after');
const before = values.baseline ? await runAll(resolve(values.baseline, 'cli', 'bin', 'fuss.js'), 'before') : {};
const table = rows.map((a) => ({
  row: a.row,
  ...(values.baseline ? { before: describe(before[a.name]), 'healthz max (before)': health(before[a.name]), 'RSS peak (before)': memory(before[a.name]) } : {}),
  after: describe(after[a.name]),
  'healthz max': health(after[a.name]),
  'RSS peak': memory(after[a.name]),
  'RSS after': left(after[a.name]),
}));
printTable(table);
console.log(`written ${writeResults('hostile', { machine: machine(), date: new Date().toISOString(), backbone: backbone.id, patienceMs, before, after, table })}`);
await rm(work, { recursive: true, force: true });
