// FussClient against the real aggregation server (Fastify on in-memory PGlite, loopback HTTP) with a
// tiny generated backbone and dataset: a whole round with its progress events, the rounds until the
// federation finishes, a backbone that is not the federation's, and a token the server does not know.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { buildApp, openDatabase, type Database } from '@fuss/aggregator';
import { Backbone, decodeModel, featureConfigKey } from '@fuss/core';
import { makeTempDir, makeTinyDataset, writeTinyBackbones } from '../../services/core/src/test-support/fixtures.js';
import { FussApi } from './api.js';
import { FussApiError } from './errors.js';
import { BackboneMismatchError, FussClient, type ParticipantEvent } from './fuss-client.js';

const ADMIN = 'admin-token-for-client-tests-0123456789';

let dir: { path: string; remove: () => Promise<void> };
let models: { cnn: string; vit: string };
let db: Database;
let app: FastifyInstance;
let baseUrl = '';
let admin: FussApi;
let backbone: { id: string; sha256: string; featureKey: string; channels: number };

beforeAll(async () => {
  dir = await makeTempDir('fuss-client-');
  await makeTinyDataset(join(dir.path, 'site'), { images: 4, labels: false });
  models = await writeTinyBackbones(join(dir.path, 'models'));
  const opened = await Backbone.open(models.cnn);
  backbone = { id: 'tiny-cnn', sha256: opened.descriptor.sha256, featureKey: featureConfigKey(opened.descriptor), channels: await opened.featureChannels() };
  await opened.close();
  db = await openDatabase({ pgliteDir: 'memory://' });
  await db.migrate();
  app = await buildApp({ db, config: { adminToken: ADMIN } });
  await app.listen({ port: 0, host: '127.0.0.1' });
  baseUrl = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  admin = new FussApi({ baseUrl, token: ADMIN });
});
afterAll(async () => {
  await admin?.close();
  await app?.close();
  await db?.close();
  await dir?.remove();
});

async function federationWithParticipant(rounds: number, settings: Partial<Parameters<FussApi['createFederation']>[0]> = {}) {
  const federation = await admin.createFederation({ name: `client-${Math.random()}`, backbone, codeDim: 4, k: 2, rounds, localSteps: 3, maxParticipants: 1, strategy: 'fedavg', ...settings });
  const { token } = await admin.addParticipant(federation.id, 'site-a');
  const me = await new FussApi({ baseUrl, token }).me();
  return { id: federation.id, token, participantId: me.id };
}

function client(token: string, backbonePath = models.cnn) {
  return new FussClient({ baseUrl, token, data: join(dir.path, 'site'), backbone: backbonePath, cacheDir: join(dir.path, 'cache'), engine: 'onnx', retry: { baseDelayMs: 1, maxDelayMs: 5 } });
}

describe('FussClient', () => {
  it('does a whole round in joinRound, with progress events, then the next rounds until the federation finishes', async () => {
    const { id, token } = await federationWithParticipant(2);
    const participant = client(token);
    const events: ParticipantEvent[] = [];
    participant.on('progress', (event) => events.push(event));
    try {
      const first = await participant.joinRound();
      expect(first).toMatchObject({ status: 'submitted', round: 1, modelVersion: 0, duplicate: false, resumed: false, samples: 4, steps: 3 });
      if (first.status !== 'submitted') throw new Error('unreachable');
      expect(first.bytes.downloaded).toBeGreaterThan(0);
      expect(first.bytes.uploaded).toBeGreaterThan(0);
      expect(first.loss && Number.isFinite(first.loss.last)).toBe(true);
      const phases = events.map((e) => e.phase).filter((phase, i, all) => phase !== all[i - 1]);
      expect(phases).toEqual(['joined', 'downloaded', 'features', 'training', 'uploading', 'uploaded']);
      expect(events.filter((e) => e.phase === 'training')).toHaveLength(3);

      // The round aggregates behind the upload; participate() waits for round 2, then sees the end.
      const rest = await participant.participate();
      expect(rest.map((r) => [r.round, r.modelVersion])).toEqual([[2, 1]]);
      expect(await participant.joinRound()).toEqual({ status: 'finished' });
      const history = await admin.roundHistory(id);
      expect(history.rounds.map((r) => [r.number, r.state, r.updates])).toEqual([[1, 'closed', 1], [2, 'closed', 1]]);
      expect(decodeModel(await admin.downloadModel(id, 'latest')).version).toBe(2);
    } finally {
      await participant.close();
    }
  });

  it('keeps its Adam states in the cache folder across rounds and restarts, and reports held-out scores', async () => {
    const settings = { localOptimizer: 'keep', lrSchedule: 'cosine', augment: 'flip', selection: 'loss:0.3:0' } as const;
    const finalModel = async (restart: 'none' | 'restart' | 'lose-state') => {
      const federation = await federationWithParticipant(2, settings);
      const stateDir = join(dir.path, 'cache', 'participants', federation.participantId);
      let participant = client(federation.token);
      try {
        const [first] = await participant.participate({ rounds: 1 });
        expect(first.samples).toBe(3); // one of the four images held out
        if (restart !== 'none') {
          await participant.close();
          if (restart === 'lose-state') await rm(join(stateDir, 'round-1.optimizer.safetensors'));
          participant = client(federation.token);
        }
        await participant.participate();
      } finally {
        await participant.close();
      }
      expect((await readdir(stateDir)).sort()).toEqual(['round-2.optimizer.safetensors', 'round-2.safetensors']);
      const history = await admin.roundHistory(federation.id);
      expect(history.rounds.map((r) => (r.metrics as { selection: unknown }).selection)).toEqual([
        { version: 0, score: expect.any(Number), reported: 1 },
        { version: 1, score: expect.any(Number), reported: 1 },
      ]);
      return Array.from(decodeModel(await admin.downloadModel(federation.id, 'latest')).head.l2Weight);
    };
    const continuous = await finalModel('none');
    expect(await finalModel('restart')).toEqual(continuous);
    expect(await finalModel('lose-state')).not.toEqual(continuous);
  });

  it('refuses a backbone that is not the federation\'s before any training or upload', async () => {
    const { id, token } = await federationWithParticipant(1);
    const participant = client(token, models.vit);
    const phases: string[] = [];
    participant.on('progress', (event) => phases.push(event.phase));
    try {
      await expect(participant.joinRound()).rejects.toThrow(BackboneMismatchError);
      await expect(participant.joinRound()).rejects.toThrow(/is not the federation's tiny-cnn/);
    } finally {
      await participant.close();
    }
    expect(phases).toEqual([]);
    expect((await admin.roundHistory(id)).rounds[0].updates).toBe(0);
  });

  it('raises a typed error, without retrying, for a token the server does not know', async () => {
    const participant = client('fuss_p_not-a-token');
    try {
      const error = await participant.joinRound().catch((err: unknown) => err);
      expect(error).toBeInstanceOf(FussApiError);
      expect(error).toMatchObject({ status: 401, attempts: 1 });
      expect((error as Error).message).not.toContain('not-a-token');
    } finally {
      await participant.close();
    }
  });
});
