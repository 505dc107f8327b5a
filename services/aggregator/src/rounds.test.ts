// Round lifecycle through the HTTP API (inject) on a fresh PGlite database and on Postgres: join, upload,
// idempotent retries, aggregation when full or at the deadline, exactly-once aggregation, and bad
// updates that leave the stored state unchanged.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { buildApp } from './app.js';
import { AGGREGATION_LEASE_MS, MAX_AGGREGATION_ATTEMPTS } from './services/rounds-service.js';
import { freshPglite, freshPostgres, postgresAvailable, type TestDatabase } from './test-support/databases.js';
import { createRng, decodeModel, encodeModel, initCentroids, initHead, decodeSafetensors, encodeSafetensors } from '@fuss/core';

const ADMIN = 'admin-token-for-tests-0123456789';
const admin = { authorization: `Bearer ${ADMIN}` };
const SHA = 'b'.repeat(64);
const onPostgres = await postgresAvailable();
const databases: [string, () => Promise<TestDatabase>][] = [
  ['PGlite', freshPglite],
  ['Postgres', freshPostgres],
];

for (const [label, fresh] of databases) {
  describe.skipIf(label === 'Postgres' && !onPostgres)(`rounds on ${label}`, () => {
    let test: TestDatabase;
    let app: FastifyInstance;
    let clockOffsetMs = 0;

    beforeAll(async () => {
      test = await fresh();
      await test.db.migrate();
      app = await buildApp({ db: test.db, config: { adminToken: ADMIN }, clock: () => new Date(Date.now() + clockOffsetMs) });
    });
    afterAll(async () => {
      await app.close();
      await test.dispose();
    });

    /** An update for `round` (default 1), trained from model version round - 1 as its metadata says. */
    function update(seed: number, options: { sha?: string; k?: number; round?: number } = {}): Buffer {
      const rng = createRng(seed);
      const k = options.k ?? 3;
      return Buffer.from(encodeModel({ head: initHead({ channels: 8, codeDim: 4 }, rng), centroids: initCentroids(k, 4, rng), channels: 8, codeDim: 4, k, backbone: { id: 'tiny', sha256: options.sha ?? SHA, featureKey: 'key1' }, round: options.round ?? 1, version: (options.round ?? 1) - 1 }));
    }

    async function setup(overrides: object = {}) {
      const created = await app.inject({
        method: 'POST',
        url: '/v1/federations',
        headers: admin,
        payload: { name: `f-${Math.random()}`, backbone: { id: 'tiny', sha256: SHA, featureKey: 'key1', channels: 8 }, codeDim: 4, k: 3, rounds: 2, localSteps: 5, maxParticipants: 2, strategy: 'fedavg', ...overrides },
      });
      expect(created.statusCode, created.body).toBe(201);
      const federation = created.json();
      const tokens: string[] = [];
      for (const name of ['site-a', 'site-b', 'site-c']) {
        tokens.push((await app.inject({ method: 'POST', url: `/v1/federations/${federation.id}/participants`, headers: admin, payload: { name } })).json().token);
      }
      return { id: federation.id as string, as: (i: number) => ({ authorization: `Bearer ${tokens[i]}` }) };
    }

    const put = (id: string, round: number, headers: object, body: Buffer, samples = 10) =>
      app.inject({ method: 'PUT', url: `/v1/federations/${id}/rounds/${round}/update?samples=${samples}&metrics=${encodeURIComponent('{"loss":0.5}')}`, headers: { ...headers, 'content-type': 'application/octet-stream' }, payload: body });

    /** The same file with the centroids' dtype declared I32 (same size: the float bytes read as integers). */
    function asI32Centroids(bytes: Buffer): Buffer {
      const length = Number(bytes.readBigUInt64LE(0));
      const header = JSON.parse(bytes.subarray(8, 8 + length).toString('utf8'));
      header.centroids.dtype = 'I32';
      const text = Buffer.from(JSON.stringify(header).padEnd(length, ' '));
      return Buffer.concat([bytes.subarray(0, 8), text, bytes.subarray(8 + length)]);
    }

    async function snapshot() {
      return {
        updates: await test.db.prisma.update.count(),
        models: await test.db.prisma.globalModel.count(),
        rounds: (await test.db.prisma.round.findMany({ orderBy: [{ federationId: 'asc' }, { number: 'asc' }] })).map((r) => [r.federationId, r.number, r.state]),
      };
    }

    describe('a federation of two participants over two rounds', () => {
      it('joins, uploads, aggregates when full, opens the next round, and finishes', async () => {
        // The paper's plain FedAvg (no robust rule), so the mean can be checked exactly.
        const f = await setup({ robust: 'none' });
        const join = (await app.inject({ method: 'POST', url: `/v1/federations/${f.id}/rounds/current/join`, headers: f.as(0) })).json();
        expect(join).toMatchObject({ status: 'open', round: 1, modelVersion: 0, alreadySubmitted: false, training: { localSteps: 5, k: 3, codeDim: 4, strategy: 'fedavg' } });
        expect((await put(f.id, 1, f.as(0), update(1))).json()).toEqual({ accepted: true, duplicate: false, round: 1, count: 1 });
        // Retried upload: counted once.
        const retry = await put(f.id, 1, f.as(0), update(1));
        expect(retry.statusCode).toBe(200);
        expect(retry.json()).toMatchObject({ accepted: false, duplicate: true, count: 1 });
        expect((await app.inject({ method: 'POST', url: `/v1/federations/${f.id}/rounds/current/join`, headers: f.as(0) })).json().alreadySubmitted).toBe(true);
        expect((await put(f.id, 1, f.as(1), update(2), 30)).statusCode).toBe(201);
        // The final upload is answered at once and starts the aggregation behind it.
        await app.rounds.idle();

        // Round 1 aggregated: version 1 is the sample-weighted mean of the two heads (FedAvg, W on).
        const latest = await app.inject({ method: 'GET', url: `/v1/federations/${f.id}/models/latest`, headers: f.as(0) });
        expect(latest.headers['x-model-version']).toBe('1');
        const model = decodeModel(latest.rawPayload);
        const a = decodeModel(update(1));
        const b = decodeModel(update(2));
        for (const i of [0, 7, 31]) expect(model.head.l1Weight[i]).toBeCloseTo(0.25 * a.head.l1Weight[i] + 0.75 * b.head.l1Weight[i], 6);
        expect(model.round).toBe(1);

        const history = (await app.inject({ method: 'GET', url: `/v1/federations/${f.id}/rounds`, headers: admin })).json().rounds;
        expect(history.map((r: { number: number; state: string; updates: number }) => [r.number, r.state, r.updates])).toEqual([[1, 'closed', 2], [2, 'open', 0]]);
        expect(history[0].metrics).toMatchObject({ updates: 2, samples: 40, strategy: 'fedavg' });
        // Stable class ids: which merged centroid became each id is recorded with the round.
        expect([...history[0].metrics.permutation].sort()).toEqual([0, 1, 2]);

        // A late update to the closed round is refused; round 2 completes the federation.
        const late = await put(f.id, 1, f.as(2), update(3));
        expect(late.statusCode).toBe(409);
        expect(late.json().detail).toMatch(/round 1 is closed/);
        await put(f.id, 2, f.as(0), update(4, { round: 2 }));
        await put(f.id, 2, f.as(1), update(5, { round: 2 }));
        await app.rounds.idle();
        expect((await app.inject({ method: 'POST', url: `/v1/federations/${f.id}/rounds/current/join`, headers: f.as(0) })).json()).toEqual({ status: 'finished' });
        expect((await app.inject({ method: 'GET', url: `/v1/federations/${f.id}`, headers: admin })).json()).toMatchObject({ status: 'finished', latestModelVersion: 2 });
      });

      it('aggregates a round exactly once when two aggregations race', async () => {
        const f = await setup({ maxParticipants: 3, strategy: 'fedcc-kmeans' });
        await put(f.id, 1, f.as(0), update(11));
        await put(f.id, 1, f.as(1), update(12));
        const round = await test.db.prisma.round.findFirstOrThrow({ where: { federationId: f.id, number: 1 } });
        const results = await Promise.all([app.rounds.aggregate(round.id), app.rounds.aggregate(round.id), app.rounds.aggregate(round.id)]);
        expect(results.filter(Boolean)).toHaveLength(1);
        expect(await test.db.prisma.globalModel.count({ where: { federationId: f.id } })).toBe(2);
        expect(await test.db.prisma.round.count({ where: { federationId: f.id } })).toBe(2);
      });
    });

    describe('trust between participants', () => {
      it('clips by default an update that moved far from the global model, and the round metrics say whose', async () => {
        const f = await setup({ maxParticipants: 3 });
        expect((await app.inject({ method: 'GET', url: `/v1/federations/${f.id}`, headers: admin })).json()).toMatchObject({ robust: 'clip', maxSamples: 1_000_000 });
        const global = decodeModel((await app.inject({ method: 'GET', url: `/v1/federations/${f.id}/models/0`, headers: admin })).rawPayload);
        // The third participant sends the global model plus 1000 times its honest delta.
        const honest = decodeModel(update(63));
        const scale = (values: Float32Array, base: Float32Array) => values.map((v, i) => base[i] + 1000 * (v - base[i]));
        const attack = Buffer.from(encodeModel({
          ...honest,
          head: Object.fromEntries(Object.entries(honest.head).map(([name, values]) => [name, scale(values, global.head[name as keyof typeof global.head])])) as unknown as typeof honest.head,
          centroids: scale(honest.centroids, global.centroids),
        }));
        await put(f.id, 1, f.as(0), update(61));
        await put(f.id, 1, f.as(1), update(62));
        await put(f.id, 1, f.as(2), attack);
        await app.rounds.idle();
        const [round] = (await app.inject({ method: 'GET', url: `/v1/federations/${f.id}/rounds`, headers: admin })).json().rounds;
        const robust = round.metrics.aggregation.robust;
        expect(robust.rule).toBe('clip');
        expect(robust.clipped).toEqual(['client-2']);
        expect(round.metrics.participants['client-2']).toBe('site-c');
        expect(robust.headClipFactors[2]).toBeLessThan(0.01);
        // The new model stays within the clip bound of the old one: far from the attacker's.
        const next = decodeModel((await app.inject({ method: 'GET', url: `/v1/federations/${f.id}/models/1`, headers: admin })).rawPayload);
        let moved = 0;
        for (const name of Object.keys(next.head) as (keyof typeof next.head)[]) next.head[name].forEach((v, i) => (moved += (v - global.head[name][i]) ** 2));
        expect(Math.sqrt(moved)).toBeLessThanOrEqual(robust.headClipThreshold * 1.0001);
      });
    });

    describe('crash recovery', () => {
      it('takes over an aggregation whose process died (claim older than the lease)', async () => {
        const f = await setup({ maxParticipants: 3 });
        await put(f.id, 1, f.as(0), update(41));
        await put(f.id, 1, f.as(1), update(42));
        const round = await test.db.prisma.round.findFirstOrThrow({ where: { federationId: f.id, number: 1 } });
        // A process claimed the round two minutes ago and was killed before committing: its lease lapsed.
        await test.db.prisma.round.update({ where: { id: round.id }, data: { state: 'aggregating', aggregationStartedAt: new Date(Date.now() - 120_000), leaseUntil: new Date(Date.now() - 120_000 + AGGREGATION_LEASE_MS) } });
        await app.rounds.sweep();
        const after = await test.db.prisma.round.findUniqueOrThrow({ where: { id: round.id } });
        expect(after.state).toBe('closed');
        expect(await test.db.prisma.globalModel.count({ where: { federationId: f.id } })).toBe(2);
        // A fresh claim (within the lease) is left alone.
        const f2 = await setup({ maxParticipants: 3 });
        await put(f2.id, 1, f2.as(0), update(43));
        const round2 = await test.db.prisma.round.findFirstOrThrow({ where: { federationId: f2.id, number: 1 } });
        await test.db.prisma.round.update({ where: { id: round2.id }, data: { state: 'aggregating', aggregationStartedAt: new Date(), leaseUntil: new Date(Date.now() + AGGREGATION_LEASE_MS) } });
        await app.rounds.sweep();
        expect((await test.db.prisma.round.findUniqueOrThrow({ where: { id: round2.id } })).state).toBe('aggregating');
      });
    });

    describe('a stored update that turned non-finite', () => {
      it.each([['Infinity in the centroids', 1, Number.POSITIVE_INFINITY], ['NaN in a head tensor', -4, Number.NaN]] as const)('is refused by the aggregation (%s)', async (_, at, value) => {
        const f = await setup({ maxParticipants: 3 });
        await put(f.id, 1, f.as(0), update(52));
        const round = await test.db.prisma.round.findFirstOrThrow({ where: { federationId: f.id, number: 1 } });
        // Valid at upload, damaged in the blob store since (tensors are stored by name: the centroids
        // first, head.l3.weight last). The aggregation's decoder does not look at values; its steps must.
        const bytes = Buffer.from(update(52));
        const header = 8 + Number(bytes.readBigUInt64LE(0));
        bytes.writeFloatLE(value, at < 0 ? bytes.length + at : header + at * 4);
        const damaged = await test.db.blobs.put(bytes);
        await test.db.prisma.update.updateMany({ where: { roundId: round.id }, data: { sha256: damaged } });
        expect(await app.rounds.aggregate(round.id)).toBe(false);
        const after = await test.db.prisma.round.findUniqueOrThrow({ where: { id: round.id } });
        expect(after.failureReason).toMatch(at < 0 ? /head\.l3Weight holds NaN/ : /centroids holds Infinity at index 1/);
        expect(await test.db.prisma.globalModel.count({ where: { federationId: f.id } })).toBe(1);
      });
    });

    describe('an aggregation that keeps failing', () => {
      it('is retried after its lease, then the round fails and the next opens from the same model', async () => {
        const f = await setup({ maxParticipants: 3 });
        await put(f.id, 1, f.as(0), update(51));
        const round = await test.db.prisma.round.findFirstOrThrow({ where: { federationId: f.id, number: 1 } });
        // A stored update damaged in the blob store: every aggregation attempt throws.
        const damaged = await test.db.blobs.put(new Uint8Array([1, 2, 3]));
        await test.db.prisma.update.updateMany({ where: { roundId: round.id }, data: { sha256: damaged } });
        expect(await app.rounds.aggregate(round.id)).toBe(false);
        const states = async () => (await test.db.prisma.round.findMany({ where: { federationId: f.id }, orderBy: { number: 'asc' } })).map((r) => [r.state, r.aggregationAttempts]);
        expect(await states()).toEqual([['aggregating', 1]]);
        // Within the lease nobody retries; after it, the sweeper does, until the attempts run out.
        await app.rounds.sweep();
        expect(await states()).toEqual([['aggregating', 1]]);
        for (let attempt = 2; attempt <= MAX_AGGREGATION_ATTEMPTS; attempt++) {
          clockOffsetMs = attempt * (AGGREGATION_LEASE_MS + 1000);
          try {
            await app.rounds.sweep();
          } finally {
            clockOffsetMs = 0;
          }
        }
        expect(await states()).toEqual([['failed', MAX_AGGREGATION_ATTEMPTS], ['open', 0]]);
        const failed = await test.db.prisma.round.findFirstOrThrow({ where: { federationId: f.id, number: 1 } });
        expect(failed.failureReason).toMatch(/attempt 3 of 3 failed: .*update/);
        const next = await test.db.prisma.round.findFirstOrThrow({ where: { federationId: f.id, number: 2 } });
        expect(next.baseVersion).toBe(0);
      });
    });

    describe('deadlines', () => {
      it('aggregates at the deadline with enough updates, extends or fails otherwise', async () => {
        const enough = await setup({ maxParticipants: 3, minParticipants: 1, roundDeadlineSeconds: 60 });
        await put(enough.id, 1, enough.as(0), update(21));
        const extend = await setup({ maxParticipants: 3, minParticipants: 2, roundDeadlineSeconds: 60, deadlinePolicy: 'extend' });
        await put(extend.id, 1, extend.as(0), update(22));
        const fail = await setup({ maxParticipants: 3, minParticipants: 2, roundDeadlineSeconds: 60, deadlinePolicy: 'fail' });
        const before = await test.db.prisma.round.findFirstOrThrow({ where: { federationId: extend.id, number: 1 } });
        clockOffsetMs = 61_000;
        try {
          await app.rounds.sweep();
        } finally {
          clockOffsetMs = 0;
        }
        const states = async (id: string) => (await test.db.prisma.round.findMany({ where: { federationId: id }, orderBy: { number: 'asc' } })).map((r) => r.state);
        expect(await states(enough.id)).toEqual(['closed', 'open']);
        expect(await states(extend.id)).toEqual(['open']);
        const after = await test.db.prisma.round.findFirstOrThrow({ where: { federationId: extend.id, number: 1 } });
        expect(after.deadlineAt.getTime()).toBeGreaterThan(before.deadlineAt.getTime());
        expect(await states(fail.id)).toEqual(['failed', 'open']);
        const failed = await test.db.prisma.round.findFirstOrThrow({ where: { federationId: fail.id, number: 1 } });
        expect(failed.failureReason).toMatch(/0 of 2 required updates/);
      });
    });

    describe('bad updates', () => {
      it('are rejected with a 4xx and a message, and change nothing', async () => {
        const f = await setup();
        const other = await setup();
        const good = update(31);
        const { tensors, metadata } = decodeSafetensors(good);
        const withNaN = Buffer.from(good);
        // Poison the last float of the data section (a centroid or bias value).
        withNaN.writeFloatLE(Number.NaN, withNaN.length - 4);
        const cases: [string, () => Promise<{ statusCode: number; json(): { detail: string } }>, number, RegExp][] = [
          ['malformed', () => put(f.id, 1, f.as(0), Buffer.from('not a safetensors file at all')), 400, /header/],
          ['truncated', () => put(f.id, 1, f.as(0), good.subarray(0, good.length - 10)), 400, /past the|bytes/],
          ['NaN', () => put(f.id, 1, f.as(0), withNaN), 400, /non-finite/],
          ['wrong shapes', () => put(f.id, 1, f.as(0), update(32, { k: 5 })), 409, /k 5, expected 3/],
          ['wrong backbone', () => put(f.id, 1, f.as(0), update(33, { sha: 'c'.repeat(64) })), 409, /trained on backbone/],
          ['missing tensor', () => { const t = { ...tensors }; delete t['head.l2.bias']; return put(f.id, 1, f.as(0), Buffer.from(encodeSafetensors(t, metadata))); }, 400, /head\.l2\.bias" is missing/],
          ['no token', () => app.inject({ method: 'PUT', url: `/v1/federations/${f.id}/rounds/1/update?samples=3`, headers: { 'content-type': 'application/octet-stream' }, payload: good }), 401, /token/],
          ['wrong token', () => put(f.id, 1, { authorization: 'Bearer fuss_p_nope' }, good), 401, /token/],
          ["another federation's token", () => put(f.id, 1, other.as(0), good), 403, /another federation/],
          ['admin token', () => put(f.id, 1, admin, good), 403, /only participants/],
          ['missing samples', () => app.inject({ method: 'PUT', url: `/v1/federations/${f.id}/rounds/1/update`, headers: { ...f.as(0), 'content-type': 'application/octet-stream' }, payload: good }), 400, /samples/],
          ['bad metrics', () => app.inject({ method: 'PUT', url: `/v1/federations/${f.id}/rounds/1/update?samples=3&metrics=%7Bnope`, headers: { ...f.as(0), 'content-type': 'application/octet-stream' }, payload: good }), 400, /metrics/],
          ['JSON body', () => app.inject({ method: 'PUT', url: `/v1/federations/${f.id}/rounds/1/update?samples=3`, headers: { ...f.as(0), 'content-type': 'application/json' }, payload: { a: 1 } }), 415, /octet-stream/],
          ['oversized body', () => put(f.id, 1, f.as(0), Buffer.alloc(5 * 1024 * 1024)), 413, /5242880 bytes; this federation's models take at most/],
          ['unknown round', () => put(f.id, 9, f.as(0), good), 404, /no round 9/],
          // Accepted before the trust layer (issue #11): integers as centroids, a claimed billion images, a replay into another round.
          ['I32 centroids', () => put(f.id, 1, f.as(0), asI32Centroids(good)), 400, /tensor "centroids" has dtype "I32"; accepted here: F32/],
          ['too many samples', () => put(f.id, 1, f.as(0), good, 1_000_000_000), 400, /samples=1000000000 exceeds this federation's maximum of 1000000/],
          ['another round', () => put(f.id, 1, f.as(0), update(35, { round: 2 })), 409, /names round 2 and model version 1, but round 1 starts from version 0/],
        ];
        const before = await snapshot();
        for (const [label, send, status, detail] of cases) {
          const response = await send();
          expect(response.statusCode, label).toBe(status);
          expect(response.json().detail, label).toMatch(detail);
        }
        expect(await snapshot()).toEqual(before);
        // The good update is still accepted afterwards, and a different second upload is a conflict.
        expect((await put(f.id, 1, f.as(0), good)).statusCode).toBe(201);
        const replaced = await put(f.id, 1, f.as(0), update(34));
        expect(replaced.statusCode).toBe(409);
        expect(replaced.json().detail).toMatch(/already accepted/);
      });
    });

  });
}
