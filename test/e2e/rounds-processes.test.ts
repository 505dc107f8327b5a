// Round safety across real processes: a server killed with SIGKILL after some updates keeps them and
// finishes the round after a restart; one killed in the middle of an upload keeps nothing of it; one
// killed in the middle of an aggregation finishes it after restart, once; two servers on one Postgres
// database receiving the final uploads at the same time aggregate the round exactly once.

import { afterAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { createRng, decodeModel, encodeModel, initCentroids, initHead } from '@fuss/core';
import { adminHeaders, startServer, stop, waitForRoundClosed } from './server-helper.js';
import { POSTGRES_URL, postgresAvailable } from '../../services/aggregator/src/test-support/databases.js';

const SHA = 'e'.repeat(64);
const cleanups: (() => Promise<unknown>)[] = [];
const onPostgres = await postgresAvailable();
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

/** Model shapes of the tests: tiny by default; `large` (C = 768, D = 70, K = 27: 2.8 MB) makes an aggregation last. */
const TINY = { channels: 8, codeDim: 4, k: 3 };
const LARGE = { channels: 768, codeDim: 70, k: 27 };

function update(seed: number, shape = TINY): Buffer {
  const rng = createRng(seed);
  return Buffer.from(encodeModel({ head: initHead(shape, rng), centroids: initCentroids(shape.k, shape.codeDim, rng), ...shape, backbone: { id: 'tiny', sha256: SHA, featureKey: 'key1' }, round: 1, version: 0 }));
}

async function createFederation(url: string, maxParticipants: number, shape = TINY) {
  const response = await fetch(`${url}/v1/federations`, {
    method: 'POST',
    headers: adminHeaders,
    body: JSON.stringify({ name: 'processes', backbone: { id: 'tiny', sha256: SHA, featureKey: 'key1', channels: shape.channels }, codeDim: shape.codeDim, k: shape.k, rounds: 3, localSteps: 1, maxParticipants, strategy: 'fedcc-kmeans' }),
  });
  expect(response.status).toBe(201);
  const { id } = (await response.json()) as { id: string };
  const tokens: string[] = [];
  for (let i = 0; i < maxParticipants; i++) {
    const enrolled = await fetch(`${url}/v1/federations/${id}/participants`, { method: 'POST', headers: adminHeaders, body: JSON.stringify({ name: `site-${i}` }) });
    tokens.push(((await enrolled.json()) as { token: string }).token);
  }
  return { id, tokens };
}

const upload = (url: string, id: string, token: string, body: Buffer) =>
  fetch(`${url}/v1/federations/${id}/rounds/1/update?samples=5`, { method: 'PUT', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' }, body });

const rounds = async (url: string, id: string) =>
  ((await (await fetch(`${url}/v1/federations/${id}/rounds`, { headers: adminHeaders })).json()) as { rounds: { number: number; state: string; updates: number }[] }).rounds;

describe('round safety across processes', () => {
  it('keeps accepted updates through a SIGKILL and finishes the round after restart', async () => {
    const dbDir = await mkdtemp(join(tmpdir(), 'fuss-e2e-kill-'));
    cleanups.push(() => rm(dbDir, { recursive: true, force: true }));
    const first = await startServer({}, ['--db-dir', dbDir]);
    const { id, tokens } = await createFederation(first.url, 3);
    expect((await upload(first.url, id, tokens[0], update(1))).status).toBe(201);
    expect((await upload(first.url, id, tokens[1], update(2))).status).toBe(201);
    expect(await stop(first.child, 'SIGKILL')).toBeNull();

    const second = await startServer({}, ['--db-dir', dbDir]);
    cleanups.push(() => stop(second.child));
    expect(await rounds(second.url, id)).toEqual([expect.objectContaining({ number: 1, state: 'open', updates: 2 })]);
    // The retried upload of a participant whose answer was lost counts once.
    expect((await upload(second.url, id, tokens[1], update(2))).status).toBe(200);
    expect((await upload(second.url, id, tokens[2], update(3))).status).toBe(201);
    const after = await waitForRoundClosed(second.url, id, 1);
    expect(after.map((r) => [r.number, r.state, r.updates])).toEqual([[1, 'closed', 3], [2, 'open', 0]]);
  });

  it('keeps nothing of an upload cut by a SIGKILL: no update, no blob, and the participant uploads again', async () => {
    const root = await mkdtemp(join(tmpdir(), 'fuss-e2e-kill-upload-'));
    cleanups.push(() => rm(root, { recursive: true, force: true }));
    const dbDir = join(root, 'db');
    const blobDir = join(root, 'blobs'); // the file store's default: next to the database folder
    const first = await startServer({}, ['--db-dir', dbDir]);
    const { id, tokens } = await createFederation(first.url, 3);
    expect((await upload(first.url, id, tokens[0], update(1))).status).toBe(201);
    // The second participant's upload: its headers and half its body, then the server dies.
    const body = update(2);
    const cut = request(`${first.url}/v1/federations/${id}/rounds/1/update?samples=5`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${tokens[1]}`, 'content-type': 'application/octet-stream', 'content-length': body.byteLength },
    });
    const answered = new Promise<string>((resolve) => {
      cut.on('response', (response) => resolve(`answered ${response.statusCode}`));
      cut.on('error', (err) => resolve(`error ${(err as NodeJS.ErrnoException).code}`));
    });
    cut.write(body.subarray(0, body.byteLength >> 1));
    await sleep(300);
    expect(await stop(first.child, 'SIGKILL')).toBeNull();
    expect(await answered).toMatch(/^error /);

    const second = await startServer({}, ['--db-dir', dbDir]);
    cleanups.push(() => stop(second.child));
    expect(await rounds(second.url, id)).toEqual([expect.objectContaining({ number: 1, state: 'open', updates: 1 })]);
    const sha256 = createHash('sha256').update(body).digest('hex');
    expect(existsSync(join(blobDir, sha256.slice(0, 2), sha256))).toBe(false);
    expect(await readdir(join(blobDir, 'tmp'))).toEqual([]);
    expect((await upload(second.url, id, tokens[1], body)).status).toBe(201);
    expect((await upload(second.url, id, tokens[2], update(3))).status).toBe(201);
    const after = await waitForRoundClosed(second.url, id, 1);
    expect(after.map((r) => [r.number, r.state, r.updates])).toEqual([[1, 'closed', 3], [2, 'open', 0]]);
  });

  it('finishes an aggregation cut by a SIGKILL after restart, once, with every accepted update', async () => {
    const root = await mkdtemp(join(tmpdir(), 'fuss-e2e-kill-aggregation-'));
    cleanups.push(() => rm(root, { recursive: true, force: true }));
    const dbDir = join(root, 'db');
    // A short lease, so that the restarted server takes over the dead one's claim within seconds.
    const env = { FUSS_AGGREGATION_LEASE_MS: '1000' };
    const participants = 6;
    const updates = Array.from({ length: participants }, (_, i) => update(100 + i, LARGE));
    let server = await startServer(env, ['--db-dir', dbDir]);
    // The aggregation of six 2.8 MB updates takes long enough to be caught in the act; a try where it
    // finished before the kill is repeated in a new federation.
    let caught: string | undefined;
    for (let attempt = 0; attempt < 4 && !caught; attempt++) {
      const { id, tokens } = await createFederation(server.url, participants, LARGE);
      for (let i = 0; i < participants - 1; i++) expect((await upload(server.url, id, tokens[i], updates[i])).status).toBe(201);
      expect((await upload(server.url, id, tokens[participants - 1], updates[participants - 1])).status).toBe(201);
      for (;;) {
        const [round] = await rounds(server.url, id);
        if (round.state === 'aggregating') {
          expect(await stop(server.child, 'SIGKILL')).toBeNull();
          caught = id;
          break;
        }
        if (round.state !== 'open') break; // finished before we looked: try again
        await sleep(5);
      }
      if (!caught) continue;
      server = await startServer(env, ['--db-dir', dbDir]);
    }
    const current = server;
    cleanups.push(() => stop(current.child));
    expect(caught, 'an aggregation was caught in progress').toBeDefined();
    const after = await waitForRoundClosed(server.url, caught!, 1);
    expect(after.map((r) => [r.number, r.state, r.updates])).toEqual([[1, 'closed', participants], [2, 'open', 0]]);
    // The model the restarted server published is whole and is version 1 of round 1; version 2 does not exist.
    const model = await fetch(`${server.url}/v1/federations/${caught}/models/1`, { headers: adminHeaders });
    expect(model.status).toBe(200);
    const decoded = decodeModel(new Uint8Array(await model.arrayBuffer()));
    expect([decoded.version, decoded.round, decoded.channels, decoded.k]).toEqual([1, 1, LARGE.channels, LARGE.k]);
    expect((await fetch(`${server.url}/v1/federations/${caught}/models/2`, { headers: adminHeaders })).status).toBe(404);
  }, 120_000);

  it.skipIf(!onPostgres)('aggregates once when two servers on one Postgres database get the final uploads together', async () => {
    const { default: pg } = await import('pg');
    const schema = `e2e_${randomBytes(5).toString('hex')}`;
    const admin = new pg.Client({ connectionString: POSTGRES_URL });
    await admin.connect();
    await admin.query(`CREATE SCHEMA "${schema}"`);
    cleanups.push(async () => {
      await admin.query(`DROP SCHEMA "${schema}" CASCADE`);
      await admin.end();
    });
    const url = new URL(POSTGRES_URL);
    url.searchParams.set('schema', schema);
    const a = await startServer({ DATABASE_URL: url.toString() });
    cleanups.push(() => stop(a.child));
    const b = await startServer({ DATABASE_URL: url.toString() });
    cleanups.push(() => stop(b.child));
    const { id, tokens } = await createFederation(a.url, 4);
    expect((await upload(a.url, id, tokens[0], update(11))).status).toBe(201);
    expect((await upload(b.url, id, tokens[1], update(12))).status).toBe(201);
    const finals = await Promise.all([upload(a.url, id, tokens[2], update(13)), upload(b.url, id, tokens[3], update(14))]);
    expect(finals.map((r) => r.status)).toEqual([201, 201]);
    await waitForRoundClosed(b.url, id, 1);
    const models = await admin.query(`SELECT version FROM "${schema}"."GlobalModel" WHERE "federationId" = $1 ORDER BY version`, [id]);
    expect(models.rows.map((r: { version: number }) => r.version)).toEqual([0, 1]);
    const history = await rounds(b.url, id);
    expect(history.map((r) => [r.number, r.state, r.updates])).toEqual([[1, 'closed', 4], [2, 'open', 0]]);
  });
});
