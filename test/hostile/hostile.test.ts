// The server tried as an attacker would (issue #10), against a real `fuss server` process on loopback
// with its default limits (the body and header timeouts shortened to keep the suite quick): every hostile request gets a
// 4xx or a closed connection within a time bound, /healthz keeps answering within HEALTH_BOUND_MS
// throughout, and the server's memory stays within a bound. Runs alone (vitest project "hostile"), so
// other test files do not compete for the two cores while latencies are measured.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'node:http';
import sharp from 'sharp';
import { Backbone, featureConfigKey } from '@fuss/core';
import { buildTinyCnn } from '../../services/core/src/test-support/tiny-backbones.js';
import { ADMIN, adminHeaders, startServer, stop, waitForRoundClosed, type ServerProcess } from '../e2e/server-helper.js';
import { ATTACKS, type Observation, type Target } from './attacks.js';
import { underWatch } from './harness.js';

/** /healthz must answer within this under every attack (a sequential probe, 20 ms apart). */
const HEALTH_BOUND_MS = 300;
const BODY_IDLE_TIMEOUT_MS = 2000;
const HEADERS_TIMEOUT_MS = 2000;

let dir = '';
let server: ServerProcess;
let target: Target;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fuss-hostile-'));
  const modelPath = join(dir, 'tiny-cnn.onnx');
  await writeFile(modelPath, buildTinyCnn());
  const opened = await Backbone.open(modelPath);
  const backbone = { id: 'tiny-cnn', sha256: opened.descriptor.sha256, featureKey: featureConfigKey(opened.descriptor), channels: await opened.featureChannels() };
  await opened.close();
  server = await startServer({ FUSS_BODY_IDLE_TIMEOUT_MS: String(BODY_IDLE_TIMEOUT_MS), FUSS_HEADERS_TIMEOUT_MS: String(HEADERS_TIMEOUT_MS), LOG_LEVEL: 'info' }, ['--db-dir', join(dir, 'db'), '--backbone', modelPath]);
  const federation = await (await fetch(`${server.url}/v1/federations`, {
    method: 'POST',
    headers: adminHeaders,
    body: JSON.stringify({ name: 'hostile', backbone, codeDim: 4, k: 3, rounds: 3, localSteps: 1, maxParticipants: 3 }),
  })).json() as { id: string };
  const participant = await (await fetch(`${server.url}/v1/federations/${federation.id}/participants`, { method: 'POST', headers: adminHeaders, body: JSON.stringify({ name: 'site-a' }) })).json() as { token: string };
  target = { url: server.url, adminToken: ADMIN, federationId: federation.id, participantToken: participant.token, backbone };
});

afterAll(async () => {
  if (server) await stop(server.child);
  await rm(dir, { recursive: true, force: true });
});

/** What each attack must get: a status (or a closed connection), how fast, and how much memory it may cost. */
const EXPECTED: Record<string, { status?: number; closed?: boolean; withinMs: number; rssGrowthMiB: number; check?: (o: Observation) => void }> = {
  'json-50mb-no-token': { status: 401, closed: true, withinMs: 1000, rssGrowthMiB: 40 },
  'json-50mb-admin': { status: 413, closed: true, withinMs: 1000, rssGrowthMiB: 40 },
  'stalled-uploads-no-token-x20': { status: 401, closed: true, withinMs: 2500, rssGrowthMiB: 40 },
  'stalled-body-with-token': { closed: true, withinMs: BODY_IDLE_TIMEOUT_MS + 2500, rssGrowthMiB: 20 },
  'stalled-headers': { closed: true, withinMs: HEADERS_TIMEOUT_MS + 2500, rssGrowthMiB: 20 },
  'png-3000x3000': { status: 200, withinMs: 15_000, rssGrowthMiB: 400 },
  'png-6000x5000': { status: 413, withinMs: 1500, rssGrowthMiB: 40 },
  'svg-as-png': { status: 415, withinMs: 1000, rssGrowthMiB: 20 },
  'tiff-as-png': { status: 415, withinMs: 1000, rssGrowthMiB: 20 },
  'gif-as-png': { status: 415, withinMs: 1000, rssGrowthMiB: 20 },
  'round-2^40': { status: 400, withinMs: 1000, rssGrowthMiB: 20 },
  'multipart-no-boundary': { status: 400, withinMs: 1000, rssGrowthMiB: 20 },
  'multipart-cut-boundary': { status: 400, withinMs: 1000, rssGrowthMiB: 20 },
  'nul-in-name': { status: 400, withinMs: 1000, rssGrowthMiB: 20 },
  'nul-in-metrics': { status: 400, withinMs: 1000, rssGrowthMiB: 20 },
  'update-50000-tensors': { withinMs: 2000, rssGrowthMiB: 60, check: (o) => { expect([400, 413]).toContain(o.status); expect(o.detailChars).toBeLessThan(1100); } },
  'federation-channels-8192': { status: 400, withinMs: 1000, rssGrowthMiB: 20 },
  'federation-channels-4096': { status: 400, withinMs: 1000, rssGrowthMiB: 20 },
};

describe('hostile requests against a real server', () => {
  it('lists an expectation for every attack', () => {
    expect(Object.keys(EXPECTED).sort()).toEqual(ATTACKS.map((a) => a.name).sort());
  });

  for (const attack of ATTACKS) {
    it(`${attack.name}: ${attack.row}`, async () => {
      const expected = EXPECTED[attack.name];
      const prepared = await attack.prepare?.(target);
      const watched = await underWatch(server.url, server.child.pid!, () => attack.run(target, {}, prepared));
      const observation = watched.result;
      const context = `${attack.name}: ${JSON.stringify({ observation, health: watched.health, rss: [watched.rssBeforeMiB, watched.rssPeakMiB] })}`;
      if (expected.status !== undefined) expect(observation.status, context).toBe(expected.status);
      if (expected.closed) expect(observation.closed, context).toBe(true);
      expect(observation.ms, context).toBeLessThan(expected.withinMs);
      expected.check?.(observation);
      expect(watched.health.failures, context).toBe(0);
      expect(watched.health.maxMs, context).toBeLessThan(HEALTH_BOUND_MS);
      expect(watched.rssPeakMiB - watched.rssBeforeMiB, context).toBeLessThan(expected.rssGrowthMiB);
      expect(server.child.exitCode, 'the server is still running').toBeNull();
    });
  }

  it('never writes a log line longer than a few kilobytes', () => {
    const longest = Math.max(...server.output().split('\n').map((line) => line.length));
    expect(longest).toBeLessThan(8000);
  });
});

describe('a 51 MB model', () => {
  it('aggregates, commits and serves while /healthz keeps answering', async () => {
    const { modelBytes } = await import('./attacks.js');
    const shape = { channels: 3500, codeDim: 70, k: 11 };
    const federation = await (await fetch(`${server.url}/v1/federations`, {
      method: 'POST',
      headers: adminHeaders,
      body: JSON.stringify({ name: 'wide', backbone: { ...target.backbone, channels: shape.channels }, codeDim: shape.codeDim, k: shape.k, rounds: 1, localSteps: 1, maxParticipants: 2, strategy: 'fedcc-kmeans' }),
    })).json() as { id: string };
    const tokens: string[] = [];
    for (const name of ['a', 'b']) tokens.push((await (await fetch(`${server.url}/v1/federations/${federation.id}/participants`, { method: 'POST', headers: adminHeaders, body: JSON.stringify({ name }) })).json() as { token: string }).token);
    const bodies = tokens.map((_, i) => modelBytes(target, 10 + i, shape));
    const watched = await underWatch(server.url, server.child.pid!, async () => {
      for (const [i, token] of tokens.entries()) {
        const body = bodies[i];
        const response = await fetch(`${server.url}/v1/federations/${federation.id}/rounds/1/update?samples=${5 + i}`, { method: 'PUT', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' }, body });
        expect(response.status, await response.text()).toBe(201);
      }
      return waitForRoundClosed(server.url, federation.id, 1, 60_000);
    });
    expect(watched.result.find((r) => r.number === 1)?.state).toBe('closed');
    expect(watched.health.maxMs, JSON.stringify(watched.health)).toBeLessThan(HEALTH_BOUND_MS * 2);
    const model = await fetch(`${server.url}/v1/federations/${federation.id}/models/latest`, { headers: { authorization: `Bearer ${tokens[0]}` } });
    expect(model.headers.get('x-model-version')).toBe('1');
    expect((await model.arrayBuffer()).byteLength).toBeGreaterThan(50_000_000);
  });
});

describe('the embedded default without FUSS_ADMIN_TOKEN', () => {
  it('answers only requests addressed to a loopback name (DNS rebinding, cross-site pages)', async () => {
    const local = await startServer({ FUSS_ADMIN_TOKEN: '' }, ['--db-dir', join(dir, 'db-local')]);
    try {
      // node:http, since fetch does not let a caller set Host.
      const ask = (headers: Record<string, string>) => new Promise<number>((resolve, reject) => {
        request(`${local.url}/v1/federations`, { headers }, (response) => {
          response.resume();
          resolve(response.statusCode ?? 0);
        }).on('error', reject).end();
      });
      expect(await ask({})).toBe(200);
      expect(await ask({ host: 'attacker.example' })).toBe(403);
      expect(await ask({ host: 'attacker.example:8080' })).toBe(403);
      expect(await ask({ origin: 'https://attacker.example' })).toBe(403);
      expect(await ask({ origin: 'null' })).toBe(403);
      expect(await ask({ origin: local.url })).toBe(200);
      expect(await ask({ host: 'localhost:8080' })).toBe(200);
    } finally {
      await stop(local.child);
    }
  });
});

describe('a segmentation image with an EXIF orientation', () => {
  it('gets a mask of the image as shown (turned), not as stored', async () => {
    const jpeg = await sharp({ create: { width: 60, height: 40, channels: 3, background: 'blue' } }).jpeg().withMetadata({ orientation: 6 }).toBuffer();
    const response = await fetch(`${server.url}/segment?federation=${target.federationId}`, { method: 'POST', headers: { authorization: `Bearer ${target.participantToken}`, 'content-type': 'image/jpeg' }, body: jpeg });
    expect(response.status).toBe(200);
    const meta = await sharp(Buffer.from(await response.arrayBuffer())).metadata();
    expect([meta.width, meta.height]).toEqual([40, 60]);
  });
});
