// What a federation may add to the paper's settings (issue 16), through the HTTP API on PGlite and
// Postgres: creation (paper defaults, canonical forms, refusals), the settings participants receive,
// a server optimiser whose state persists next to each model version (so a restarted server continues
// exactly), and label-free model selection from the scores participants report, with an early stop.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import {
  aggregationSeed, createRng, createStrategy, decodeModel, encodeModel, FEDERATION_DEFAULTS, HEAD_PARAM_NAMES, initCentroids, initHead, PAPER_FEDERATION, parseServerOptimizer, type ServerOptimizerState,
} from '@fuss/core';
import { buildApp } from './app.js';
import { collectGarbage } from './storage/garbage.js';
import { freshPglite, freshPostgres, postgresAvailable, type TestDatabase } from './test-support/databases.js';

const ADMIN = 'admin-token-for-tests-0123456789';
const admin = { authorization: `Bearer ${ADMIN}` };
const SHA = 'c'.repeat(64);
const onPostgres = await postgresAvailable();

for (const [label, fresh] of [['PGlite', freshPglite], ['Postgres', freshPostgres]] as const) {
  describe.skipIf(label === 'Postgres' && !onPostgres)(`federation mechanisms on ${label}`, () => {
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

    const create = (server: FastifyInstance, overrides: object = {}) =>
      server.inject({
        method: 'POST',
        url: '/v1/federations',
        headers: admin,
        payload: { name: `f-${Math.random()}`, backbone: { id: 'tiny', sha256: SHA, featureKey: 'key1', channels: 8 }, codeDim: 4, k: 3, rounds: 3, localSteps: 5, maxParticipants: 2, strategy: 'fedavg', robust: 'none', ...overrides },
      });

    async function setup(server: FastifyInstance, overrides: object = {}) {
      const created = await create(server, overrides);
      expect(created.statusCode, created.body).toBe(201);
      const id = created.json().id as string;
      const tokens: string[] = [];
      for (const name of ['site-a', 'site-b']) tokens.push((await server.inject({ method: 'POST', url: `/v1/federations/${id}/participants`, headers: admin, payload: { name } })).json().token);
      return { id, as: (i: number) => ({ authorization: `Bearer ${tokens[i]}` }) };
    }

    /** Participant `index`'s update to `round` (from version round - 1). */
    function update(index: number, round: number): Buffer {
      const rng = createRng(100 * round + index);
      return Buffer.from(encodeModel({ head: initHead({ channels: 8, codeDim: 4 }, rng), centroids: initCentroids(3, 4, rng), channels: 8, codeDim: 4, k: 3, backbone: { id: 'tiny', sha256: SHA, featureKey: 'key1' }, round, version: round - 1 }));
    }

    const put = (server: FastifyInstance, id: string, round: number, headers: object, body: Buffer, metrics: object = { loss: 0.5 }) =>
      server.inject({ method: 'PUT', url: `/v1/federations/${id}/rounds/${round}/update?samples=${10 + round}&metrics=${encodeURIComponent(JSON.stringify(metrics))}`, headers: { ...headers, 'content-type': 'application/octet-stream' }, payload: body });

    it('creates federations with the measured defaults, stores canonical forms, and refuses bad ones', async () => {
      const defaults = (await create(app, { strategy: undefined, robust: undefined })).json();
      expect(defaults).toMatchObject({ ...FEDERATION_DEFAULTS, selectedModelVersion: null });
      // The default server optimiser steps along the head: without module E it is none, not an error.
      const withoutHead = await create(app, { modules: { head: false } });
      expect(withoutHead.statusCode, withoutHead.body).toBe(201);
      expect(withoutHead.json()).toMatchObject({ serverOptimizer: 'none', modules: { head: false, weighted: true, centroids: true } });
      const paper = (await create(app, { ...PAPER_FEDERATION })).json();
      expect(paper).toMatchObject({ ...PAPER_FEDERATION, selectedModelVersion: null });
      const created = await create(app, { serverOptimizer: 'fedadam', localOptimizer: 'keep', lrSchedule: 'cosine', augment: 'crops:0.8,flip', selection: 'loss' });
      expect(created.statusCode, created.body).toBe(201);
      expect(created.json()).toMatchObject({ serverOptimizer: 'fedadam:0.01:0.001:0.9:0.99', localOptimizer: 'keep', lrSchedule: 'cosine', augment: 'flip,crops:0.8', selection: 'loss:0.1:2' });
      const id = created.json().id;
      const token = (await app.inject({ method: 'POST', url: `/v1/federations/${id}/participants`, headers: admin, payload: { name: 'p' } })).json().token;
      const join = (await app.inject({ method: 'POST', url: `/v1/federations/${id}/rounds/current/join`, headers: { authorization: `Bearer ${token}` } })).json();
      expect(join.training).toMatchObject({ rounds: 3, localOptimizer: 'keep', lrSchedule: 'cosine', augment: 'flip,crops:0.8', selection: 'loss:0.1:2' });
      for (const [overrides, message] of [
        [{ serverOptimizer: 'adam' }, /serverOptimizer/],
        [{ serverOptimizer: 'fedavgm:1:1' }, /momentum must be in \[0, 1\)/],
        [{ serverOptimizer: 'fedadam', modules: { head: false } }, /needs modules.head/],
        [{ localOptimizer: 'forget' }, /localOptimizer/],
        [{ augment: 'mirror' }, /augment/],
        [{ selection: 'loss:2' }, /between 0 and 1/],
      ] as const) {
        const refused = await create(app, overrides);
        expect(refused.statusCode, JSON.stringify(overrides)).toBe(400);
        expect(refused.json().detail ?? refused.body).toMatch(message);
      }
    });

    it('keeps the server optimiser state next to each version; a restarted server continues exactly', async () => {
      const f = await setup(app, { serverOptimizer: 'fedavgm:0.7:0.9' });
      const round = async (server: FastifyInstance, number: number) => {
        for (const i of [0, 1]) expect((await put(server, f.id, number, f.as(i), update(i, number))).statusCode).toBe(201);
        await server.rounds.idle();
      };
      await round(app, 1);
      // A second server process on the same database and blob store takes over for rounds 2 and 3.
      const restarted = await buildApp({ db: test.db, config: { adminToken: ADMIN } });
      try {
        await round(restarted, 2);
        await round(restarted, 3);
      } finally {
        await restarted.close();
      }
      // The same three rounds in memory, with the state carried from round to round.
      const federation = (await app.inject({ method: 'GET', url: `/v1/federations/${f.id}`, headers: admin })).json();
      const download = async (version: number) => decodeModel((await app.inject({ method: 'GET', url: `/v1/federations/${f.id}/models/${version}`, headers: admin })).rawPayload);
      let previous = await download(0);
      let state: ServerOptimizerState | undefined;
      for (const number of [1, 2, 3]) {
        const updates = [0, 1].map((i) => {
          const model = decodeModel(update(i, number));
          return { clientId: `client-${i}`, head: model.head, centroids: model.centroids, samples: 10 + number, backboneSha256: SHA, featureKey: 'key1' };
        });
        const expected = createStrategy('fedavg').aggregate(updates, {
          k: 3, codeDim: 4, channels: 8, seed: aggregationSeed(federation.seed, number), modules: { head: true, centroids: true, weighted: true },
          previous: { head: previous.head, centroids: previous.centroids }, serverOptimizer: parseServerOptimizer('fedavgm:0.7:0.9'), serverState: state,
        });
        const stored = await download(number);
        for (const name of HEAD_PARAM_NAMES) expect(Array.from(stored.head[name]), `version ${number} ${name}`).toEqual(Array.from(expected.head[name]));
        expect(Array.from(stored.centroids)).toEqual(Array.from(expected.centroids));
        state = expected.serverState;
        previous = stored;
      }
      const rows = await test.db.prisma.globalModel.findMany({ where: { federationId: f.id }, orderBy: { version: 'asc' }, select: { serverStateSha256: true } });
      expect(rows[0].serverStateSha256).toBeNull();
      expect(rows.slice(1).every((r) => typeof r.serverStateSha256 === 'string')).toBe(true);
      // The states are named by their model rows: garbage collection keeps them.
      await collectGarbage(test.db, new Date(Date.now() + 3_600_000));
      for (const row of rows.slice(1)) expect(await test.db.blobs.has(row.serverStateSha256!)).toBe(true);
    });

    it('scores each round\'s starting model by the median of reported scores, selects a version and stops after the patience', async () => {
      const f = await setup(app, { rounds: 5, selection: 'loss:0.1:1' });
      const reports = [
        [{ version: 0, loss: 1 }, { version: 0, loss: 3 }], // version 0: 2
        [{ version: 1, loss: 1.5 }, { version: 7, loss: -100 }], // version 1: 1.5 (a score of another version is ignored)
        [{ version: 2, loss: 1.5 }, { version: 2, loss: 2 }], // version 2: 1.75, worse: patience 1 is spent
      ];
      for (const [index, pair] of reports.entries()) {
        const number = index + 1;
        for (const i of [0, 1]) expect((await put(app, f.id, number, f.as(i), update(i, number), { loss: 0.5, validation: pair[i] })).statusCode).toBe(201);
        await app.rounds.idle();
        const federation = (await app.inject({ method: 'GET', url: `/v1/federations/${f.id}`, headers: admin })).json();
        expect(federation.selectedModelVersion, `after round ${number}`).toBe([1, 2, 1][index]);
      }
      const history = (await app.inject({ method: 'GET', url: `/v1/federations/${f.id}/rounds`, headers: admin })).json().rounds;
      expect(history.map((r: { metrics: { selection: unknown } }) => r.metrics.selection)).toEqual([
        { version: 0, score: 2, reported: 2 },
        { version: 1, score: 1.5, reported: 1 },
        { version: 2, score: 1.75, reported: 2 },
      ]);
      // Finished after round 3 of 5: no round 4 was opened.
      expect(history).toHaveLength(3);
      expect((await app.inject({ method: 'GET', url: `/v1/federations/${f.id}`, headers: admin })).json()).toMatchObject({ status: 'finished', latestModelVersion: 3, selectedModelVersion: 1 });
    });
  });
}
