// Round safety across real processes: a server killed with SIGKILL after some updates keeps them and
// finishes the round after a restart; two servers on one Postgres database receiving the final
// uploads at the same time aggregate the round exactly once.

import { afterAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { createRng, encodeModel, initCentroids, initHead } from '@fuss/core';
import { adminHeaders, startServer, stop, waitForRoundClosed } from './server-helper.js';
import { POSTGRES_URL, postgresAvailable } from '../../services/aggregator/src/test-support/databases.js';

const SHA = 'e'.repeat(64);
const cleanups: (() => Promise<unknown>)[] = [];
const onPostgres = await postgresAvailable();
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

function update(seed: number): Buffer {
  const rng = createRng(seed);
  return Buffer.from(encodeModel({ head: initHead({ channels: 8, codeDim: 4 }, rng), centroids: initCentroids(3, 4, rng), channels: 8, codeDim: 4, k: 3, backbone: { id: 'tiny', sha256: SHA, featureKey: 'key1' }, round: 1, version: 0 }));
}

async function createFederation(url: string, maxParticipants: number) {
  const response = await fetch(`${url}/v1/federations`, {
    method: 'POST',
    headers: adminHeaders,
    body: JSON.stringify({ name: 'processes', backbone: { id: 'tiny', sha256: SHA, featureKey: 'key1', channels: 8 }, codeDim: 4, k: 3, rounds: 3, localSteps: 1, maxParticipants, strategy: 'fedcc-kmeans' }),
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
