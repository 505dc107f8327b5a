// The dashboard's history routes (GET /v1/federations/{id}/centroids, /updates, /evaluations) through the HTTP
// API (inject), on PGlite and Postgres: what members read, what a participant may not read, and
// answers that stay bounded whatever the participants sent.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { createRng, decodeModel, encodeModel, initCentroids, initHead } from '@fuss/core';
import { buildApp } from './app.js';
import { centroidsOf, METRICS_PER_UPDATE, versionsToShow } from './services/history-service.js';
import { freshPglite, freshPostgres, postgresAvailable, type TestDatabase } from './test-support/databases.js';

const ADMIN = 'admin-token-for-tests-0123456789';
const admin = { authorization: `Bearer ${ADMIN}` };
const SHA = 'd'.repeat(64);
const onPostgres = await postgresAvailable();

function update(seed: number, round: number): Buffer {
  const rng = createRng(seed);
  return Buffer.from(encodeModel({ head: initHead({ channels: 8, codeDim: 4 }, rng), centroids: initCentroids(3, 4, rng), channels: 8, codeDim: 4, k: 3, backbone: { id: 'tiny', sha256: SHA, featureKey: 'key1' }, round, version: round - 1 }));
}

describe('versionsToShow', () => {
  it('takes every version while they fit, else evenly spaced ones with the first and the latest', () => {
    expect(versionsToShow(3, 10, 100)).toEqual([0, 1, 2, 3]);
    expect(versionsToShow(100, 10, 50)).toEqual([0, 25, 50, 75, 100]);
    expect(versionsToShow(100, 10, 15)).toEqual([100]);
    expect(versionsToShow(100, 10, 5)).toEqual([]);
    expect(versionsToShow(0, 10, 100)).toEqual([0]);
  });
});

describe('centroidsOf', () => {
  const model = encodeModel({ head: initHead({ channels: 8, codeDim: 4 }, createRng(1)), centroids: initCentroids(3, 4, createRng(2)), channels: 8, codeDim: 4, k: 3, backbone: { id: 'tiny', sha256: SHA, featureKey: 'key1' }, round: 0, version: 0 });

  it('reads the centroids tensor of a model file without decoding the rest', () => {
    expect(Array.from(centroidsOf(model, 3, 4))).toEqual(Array.from(decodeModel(model).centroids));
  });

  it('refuses a damaged file or other shapes', () => {
    expect(() => centroidsOf(model, 4, 4)).toThrow(/shape \[4, 4\]/);
    expect(() => centroidsOf(model.subarray(0, 5), 3, 4)).toThrow(/malformed/);
    expect(() => centroidsOf(model.subarray(0, 100), 3, 4)).toThrow(/malformed/);
    // The centroids come first in the data section (tensors are sorted by name): cut inside them.
    const dataStart = 8 + Number(new DataView(model.buffer, model.byteOffset).getBigUint64(0, true));
    expect(() => centroidsOf(model.subarray(0, dataStart + 10), 3, 4)).toThrow(/centroids/);
  });
});

for (const [label, fresh] of [['PGlite', freshPglite], ['Postgres', freshPostgres]] as const) {
  describe.skipIf(label === 'Postgres' && !onPostgres)(`history routes on ${label}`, () => {
    let test: TestDatabase;
    let app: FastifyInstance;

    beforeAll(async () => {
      test = await fresh();
      await test.db.migrate();
      app = await buildApp({ db: test.db, config: { adminToken: ADMIN } });
    });
    afterAll(async () => {
      await app.close();
      await test.dispose();
    });

    async function federation(maxParticipants = 2) {
      const created = await app.inject({
        method: 'POST',
        url: '/v1/federations',
        headers: admin,
        payload: { name: `h-${Math.random()}`, backbone: { id: 'tiny', sha256: SHA, featureKey: 'key1', channels: 8 }, codeDim: 4, k: 3, rounds: 3, localSteps: 1, maxParticipants, strategy: 'fedavg' },
      });
      expect(created.statusCode, created.body).toBe(201);
      const id = created.json().id as string;
      const tokens: string[] = [];
      for (const name of ['site-a', 'site-b']) tokens.push((await app.inject({ method: 'POST', url: `/v1/federations/${id}/participants`, headers: admin, payload: { name } })).json().token);
      return { id, as: (i: number) => ({ authorization: `Bearer ${tokens[i]}` }) };
    }

    const submit = async (id: string, round: number, headers: object, seed: number, metrics: unknown) => {
      const r = await app.inject({ method: 'PUT', url: `/v1/federations/${id}/rounds/${round}/update?samples=${10 + seed}&metrics=${encodeURIComponent(JSON.stringify(metrics))}`, headers: { ...headers, 'content-type': 'application/octet-stream' }, payload: update(seed, round) });
      expect(r.statusCode, r.body).toBe(201);
    };

    it('give the centroids of every version, equal to the models, with the class table', async () => {
      const f = await federation();
      await app.inject({ method: 'PUT', url: `/v1/federations/${f.id}/classes`, headers: admin, payload: { classes: [{ id: 1, name: 'road <b>', colour: '#112233' }] } });
      const first = await app.inject({ method: 'GET', url: `/v1/federations/${f.id}/centroids`, headers: f.as(1) });
      expect(first.statusCode, first.body).toBe(200);
      expect(first.json()).toMatchObject({ k: 3, codeDim: 4, latestVersion: 0, omittedVersions: 0 });
      expect(first.json().classes).toEqual([{ id: 0, name: 'class 0', colour: expect.stringMatching(/^#[0-9a-f]{6}$/) }, { id: 1, name: 'road <b>', colour: '#112233' }, { id: 2, name: 'class 2', colour: expect.stringMatching(/^#/) }]);
      await submit(f.id, 1, f.as(0), 1, { loss: 1 });
      await submit(f.id, 1, f.as(1), 2, { loss: 2 });
      await app.rounds.idle();
      const body = (await app.inject({ method: 'GET', url: `/v1/federations/${f.id}/centroids`, headers: admin })).json();
      expect(body.versions.map((v: { version: number; round: number }) => [v.version, v.round])).toEqual([[0, 0], [1, 1]]);
      for (const version of [0, 1]) {
        const model = decodeModel((await app.inject({ method: 'GET', url: `/v1/federations/${f.id}/models/${version}`, headers: admin })).rawPayload);
        const expected = Array.from({ length: 3 }, (_, c) => Array.from(model.centroids.subarray(c * 4, c * 4 + 4)));
        body.versions[version].centroids.forEach((row: number[], c: number) => row.forEach((x, j) => expect(x).toBeCloseTo(expected[c][j], 5)));
      }
    });

    it('give the numeric metrics of every update to the admin, and only its own to a participant', async () => {
      const f = await federation();
      const many = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`m${String(i).padStart(2, '0')}`, i]));
      await submit(f.id, 1, f.as(0), 1, { loss: 1.5, steps: 5, note: 'text <script>', nested: { loss: 1 }, flag: true, ['x'.repeat(65)]: 1 });
      await submit(f.id, 1, f.as(1), 2, many);
      await app.rounds.idle();
      await submit(f.id, 2, f.as(0), 3, { loss: 0.5 });
      const all = await app.inject({ method: 'GET', url: `/v1/federations/${f.id}/updates`, headers: admin });
      expect(all.statusCode, all.body).toBe(200);
      const { updates, truncated } = all.json();
      expect(truncated).toBe(false);
      expect(updates.map((u: { round: number; participant: string; samples: number }) => [u.round, u.participant, u.samples])).toEqual([[1, 'site-a', 11], [1, 'site-b', 12], [2, 'site-a', 13]]);
      expect(updates[0].metrics).toEqual({ loss: 1.5, steps: 5 });
      expect(Object.keys(updates[1].metrics)).toHaveLength(METRICS_PER_UPDATE);
      const own = (await app.inject({ method: 'GET', url: `/v1/federations/${f.id}/updates`, headers: f.as(1) })).json();
      expect(own.updates.map((u: { participant: string }) => u.participant)).toEqual(['site-b']);
      const since = (await app.inject({ method: 'GET', url: `/v1/federations/${f.id}/updates?sinceRound=2`, headers: admin })).json();
      expect(since.updates.map((u: { round: number }) => u.round)).toEqual([2]);
    });

    it('say that server-side validation is off on a server without --eval-data', async () => {
      const f = await federation();
      const r = await app.inject({ method: 'GET', url: `/v1/federations/${f.id}/evaluations`, headers: f.as(0) });
      expect(r.statusCode, r.body).toBe(200);
      expect(r.json()).toEqual({ enabled: false, evaluations: [], pending: 0 });
    });

    it('refuse callers without rights and broken requests with 4xx', async () => {
      const f = await federation();
      const other = await federation();
      for (const path of ['centroids', 'updates', 'evaluations']) {
        const url = `/v1/federations/${f.id}/${path}`;
        expect((await app.inject({ method: 'GET', url })).statusCode).toBe(401);
        expect((await app.inject({ method: 'GET', url, headers: { authorization: 'Bearer nope-nope-nope' } })).statusCode).toBe(401);
        expect((await app.inject({ method: 'GET', url, headers: other.as(0) })).statusCode).toBe(403);
        expect((await app.inject({ method: 'GET', url: `/v1/federations/not-a-uuid/${path}`, headers: admin })).statusCode).toBe(400);
        const missing = await app.inject({ method: 'GET', url: `/v1/federations/00000000-0000-4000-8000-000000000000/${path}`, headers: admin });
        expect(missing.statusCode).toBe(404);
        expect(missing.headers['content-type']).toMatch(/problem\+json/);
      }
      for (const query of ['sinceRound=0', 'sinceRound=x', 'sinceRound=99999999999', "sinceRound=1'--"]) {
        expect((await app.inject({ method: 'GET', url: `/v1/federations/${f.id}/updates?${query}`, headers: admin })).statusCode, query).toBe(400);
      }
    });
  });
}
