// Aggregations that fail or take long, on PGlite and Postgres: a failing commit counts as an attempt
// (the round fails after MAX_AGGREGATION_ATTEMPTS), one failing round does not keep the sweep from the
// others, a computation longer than the lease keeps its claim by renewing it, and the bytes of old
// rounds' updates are deleted while their rows and every model stay.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { createRng, encodeModel, initCentroids, initHead } from '@fuss/core';
import { buildApp } from './app.js';
import { MAX_AGGREGATION_ATTEMPTS } from './services/rounds-service.js';
import { freshPglite, freshPostgres, postgresAvailable, type TestDatabase } from './test-support/databases.js';

const ADMIN = 'admin-token-for-tests-0123456789';
const admin = { authorization: `Bearer ${ADMIN}` };
const SHA = 'e'.repeat(64);
const LEASE_MS = 1000;
const onPostgres = await postgresAvailable();

for (const [label, fresh] of [['PGlite', freshPglite], ['Postgres', freshPostgres]] as const) {
  describe.skipIf(label === 'Postgres' && !onPostgres)(`aggregation resilience on ${label}`, () => {
    let test: TestDatabase;
    let app: FastifyInstance;
    let clockOffsetMs = 0;
    const failCommit = new Set<string>();
    let commitDelayMs = 0;

    beforeAll(async () => {
      test = await fresh();
      await test.db.migrate();
      app = await buildApp({
        db: test.db,
        config: { adminToken: ADMIN, limits: { aggregationLeaseMs: LEASE_MS, keepUpdateRounds: 1 } },
        clock: () => new Date(Date.now() + clockOffsetMs),
        beforeCommit: async (roundId) => {
          if (commitDelayMs) await new Promise((resolve) => setTimeout(resolve, commitDelayMs));
          if (failCommit.has(roundId)) throw new Error('the database refused the commit');
        },
      });
    });
    afterAll(async () => {
      await app.close();
      await test.dispose();
    });

    const update = (seed: number) => Buffer.from(encodeModel({ head: initHead({ channels: 8, codeDim: 4 }, createRng(seed)), centroids: initCentroids(3, 4, createRng(seed + 1)), channels: 8, codeDim: 4, k: 3, backbone: { id: 'tiny', sha256: SHA, featureKey: 'key1' }, round: 0, version: 0 }));

    async function federation(rounds = 1) {
      const created = await app.inject({ method: 'POST', url: '/v1/federations', headers: admin, payload: { name: `f-${Math.random()}`, backbone: { id: 'tiny', sha256: SHA, featureKey: 'key1', channels: 8 }, codeDim: 4, k: 3, rounds, localSteps: 1, maxParticipants: 2, strategy: 'fedavg' } });
      const id = created.json().id as string;
      const tokens: string[] = [];
      for (const name of ['a', 'b']) tokens.push((await app.inject({ method: 'POST', url: `/v1/federations/${id}/participants`, headers: admin, payload: { name } })).json().token);
      return { id, tokens };
    }
    const put = (id: string, token: string, round: number, seed: number) =>
      app.inject({ method: 'PUT', url: `/v1/federations/${id}/rounds/${round}/update?samples=4`, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' }, payload: update(seed) });
    const roundOf = (id: string, number: number) => test.db.prisma.round.findFirstOrThrow({ where: { federationId: id, number } });

    async function sweepLater(ms: number) {
      clockOffsetMs += ms;
      await app.rounds.sweep();
    }

    it('counts failed commits as attempts and fails the round after the last; the sweep goes on with other rounds', async () => {
      const broken = await federation();
      const healthy = await federation();
      for (const f of [broken, healthy]) {
        // Full rounds start their aggregation in the background; both commits fail this time.
        failCommit.add((await roundOf(f.id, 1)).id);
        await put(f.id, f.tokens[0], 1, 1);
        await put(f.id, f.tokens[1], 1, 2);
      }
      await app.rounds.idle();
      for (const f of [broken, healthy]) expect((await roundOf(f.id, 1)).aggregationAttempts).toBe(1);
      // The next sweep (after the back-off) retries both: the healthy one closes though the broken one fails again.
      failCommit.delete((await roundOf(healthy.id, 1)).id);
      await sweepLater(LEASE_MS + 100);
      expect((await roundOf(healthy.id, 1)).state).toBe('closed');
      expect((await roundOf(broken.id, 1)).aggregationAttempts).toBe(2);
      for (let attempt = 3; attempt <= MAX_AGGREGATION_ATTEMPTS; attempt++) await sweepLater(LEASE_MS + 100);
      const failed = await roundOf(broken.id, 1);
      expect([failed.state, failed.aggregationAttempts]).toEqual(['failed', MAX_AGGREGATION_ATTEMPTS]);
      expect(failed.failureReason).toMatch(/attempt 3 of 3 failed: the database refused the commit/);
      // Nothing of the failed attempts was published.
      expect(await test.db.prisma.globalModel.count({ where: { federationId: broken.id } })).toBe(1);
      clockOffsetMs = 0;
    });

    it('keeps the claim of a computation that outlasts the lease by renewing it', async () => {
      const f = await federation();
      await put(f.id, f.tokens[0], 1, 3);
      const round = await roundOf(f.id, 1);
      commitDelayMs = LEASE_MS * 2.5;
      try {
        const first = app.rounds.aggregate(round.id);
        await new Promise((resolve) => setTimeout(resolve, LEASE_MS * 1.6));
        // Another process sweeping now finds the claim renewed and leaves it alone.
        expect(await app.rounds.aggregate(round.id)).toBe(false);
        expect(await first).toBe(true);
      } finally {
        commitDelayMs = 0;
      }
      expect((await roundOf(f.id, 1)).state).toBe('closed');
      expect(await test.db.prisma.globalModel.count({ where: { federationId: f.id } })).toBe(2);
    });

    it('deletes the bytes of updates older than FUSS_KEEP_UPDATE_ROUNDS rounds; rows and models stay', async () => {
      const f = await federation(3);
      for (const round of [1, 2, 3]) {
        await put(f.id, f.tokens[0], round, 10 * round);
        await put(f.id, f.tokens[1], round, 10 * round + 1);
        await app.rounds.idle();
        expect((await roundOf(f.id, round)).state).toBe('closed');
      }
      const updates = await test.db.prisma.update.findMany({ where: { round: { federationId: f.id } }, include: { round: true }, orderBy: { round: { number: 'asc' } } });
      expect(updates.map((u) => [u.round.number, u.prunedAt !== null])).toEqual([[1, true], [1, true], [2, true], [2, true], [3, false], [3, false]]);
      for (const u of updates) expect(await test.db.blobs.has(u.sha256), `round ${u.round.number}`).toBe(u.prunedAt === null);
      const models = await test.db.prisma.globalModel.findMany({ where: { federationId: f.id } });
      expect(models).toHaveLength(4);
      for (const m of models) expect(await test.db.blobs.has(m.sha256)).toBe(true);
      // The history still counts every update.
      const history = (await app.inject({ method: 'GET', url: `/v1/federations/${f.id}/rounds`, headers: admin })).json().rounds;
      expect(history.map((r: { updates: number }) => r.updates)).toEqual([2, 2, 2]);
    });
  });
}
