import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { Backbone } from '../backbone/backbone.js';
import { openDataset } from '../dataset/dataset.js';
import { makeTempDir, makeTinyDataset, writeTinyBackbones } from '../test-support/fixtures.js';
import { loadFeatureStore, type FeatureStore } from './feature-store.js';
import { assignmentEntropy, trainModel, TrainingDivergedError, type TrainerOptions } from './trainer.js';
import { derangement, QueryOrder, sampleBatch } from './batch-sampler.js';
import { createOnnxEngine } from '../engines/onnx/onnx-engine.js';
import { initCentroids, initHead } from '../head/head-init.js';
import { createRng } from '../math/rng.js';
import { TRAINING_DEFAULTS } from '../defaults.js';
import { learningRateScale, parseLearningRateSchedule } from './lr-schedule.js';
import type { TrainingEngine } from '../engines/engine.js';

let dir: { path: string; remove: () => Promise<void> };
let store: FeatureStore;
let engine: TrainingEngine;

const options: TrainerOptions = {
  queries: 3,
  negatives: 2,
  sampling: 'sampled',
  samplePoints: 4,
  weights: TRAINING_DEFAULTS.weights,
  shifts: TRAINING_DEFAULTS.stegoShifts,
  centre: true,
  dropout: 0.1,
  steps: 12,
  k: 2,
  codeDim: 4,
  lambda: 0,
  headLr: 5e-3,
  centroidLr: 5e-2,
  seed: 3,
};

beforeAll(async () => {
  dir = await makeTempDir();
  await makeTinyDataset(join(dir.path, 'data'), { images: 6 });
  const models = await writeTinyBackbones(join(dir.path, 'models'));
  const backbone = await Backbone.open(models.cnn);
  store = await loadFeatureStore((await openDataset(join(dir.path, 'data'))).items, backbone, { neighbourCount: 2 });
  await backbone.close();
  engine = await createOnnxEngine({ threads: 1 });
});
afterAll(async () => {
  await engine.dispose();
  await dir.remove();
});

function start(seed = 0) {
  const rng = createRng(seed);
  return { head: initHead({ channels: store.channels, codeDim: 4 }, rng), centroids: initCentroids(2, 4, rng) };
}

describe('feature store and batches', () => {
  it('holds every image with its neighbours and mean feature', () => {
    expect(store.images).toHaveLength(6);
    expect(store.channels).toBe(8);
    expect(store.neighbours.every((n, i) => n.length === 2 && !n.includes(i))).toBe(true);
    expect(store.mean.every((v) => Number.isFinite(v) && v >= 0)).toBe(true);
  });

  it('builds batches of queries, partners, and pairs whose weights average over the batch', () => {
    const rng = createRng(1);
    const batch = sampleBatch(store, options, new QueryOrder(6, rng.fork()), rng);
    expect([batch.images, batch.queries, batch.cells, batch.channels]).toEqual([6, 3, 16, 8]);
    // 3 intra + 3 inter + 2 x 3 negatives
    expect(batch.pairA.length).toBe(12);
    const total = (kind: (a: number, b: number) => boolean) =>
      Array.from(batch.pairWeight).reduce((s, w, p) => s + (kind(batch.pairA[p], batch.pairB[p]) ? w : 0), 0);
    expect(total((a, b) => a === b)).toBeCloseTo(TRAINING_DEFAULTS.weights.intra, 6);
    expect(total((_a, b) => b >= 3)).toBeCloseTo(TRAINING_DEFAULTS.weights.inter, 6);
    expect(total((a, b) => a !== b && b < 3)).toBeCloseTo(TRAINING_DEFAULTS.weights.neg, 6);
    for (let r = 0; r < batch.images * batch.cells; r++) {
      let norm = 0;
      for (let c = 0; c < 8; c++) norm += batch.featuresUnit[r * 8 + c] ** 2;
      expect(norm === 0 || Math.abs(norm - 1) < 1e-5).toBe(true);
    }
    expect(Array.from(batch.dropMask1).every((v) => v === 0 || v === Math.fround(1 / 0.9))).toBe(true);
  });

  it('draws every image once per epoch and derangements without fixed points', () => {
    const order = new QueryOrder(6, createRng(2));
    const epoch = [...order.next(3), ...order.next(3)];
    expect(new Set(epoch).size).toBe(6);
    const rng = createRng(4);
    for (let i = 0; i < 20; i++) expect(derangement(5, rng).every((v, j) => v !== j)).toBe(true);
  });
});

describe('trainModel', () => {
  it('is deterministic for a seed and reports entropy', async () => {
    const a = await trainModel(store, engine, start(), options);
    const b = await trainModel(store, engine, start(), options);
    expect(a.history.map((e) => e.loss)).toEqual(b.history.map((e) => e.loss));
    expect(a.centroids).toEqual(b.centroids);
    expect(a.history).toHaveLength(12);
    expect(a.history.every((e) => e.clusterEntropy >= 0 && e.clusterEntropy <= 1)).toBe(true);
    const c = await trainModel(store, engine, start(), { ...options, seed: 4 });
    expect(c.history.map((e) => e.loss)).not.toEqual(a.history.map((e) => e.loss));
  });

  it('lowers the correspondence loss on the synthetic images', async () => {
    const result = await trainModel(store, engine, start(), { ...options, steps: 60 });
    const mean = (events: typeof result.history) => events.reduce((s, e) => s + e.parts.corr, 0) / events.length;
    expect(mean(result.history.slice(-10))).toBeLessThan(mean(result.history.slice(0, 10)));
  });

  it('stops on a non-finite loss and hands back the last good parameters', async () => {
    let calls = 0;
    const poisoned: TrainingEngine = {
      ...engine,
      name: 'poisoned',
      step: async (...args) => {
        const result = await engine.step(...args);
        return ++calls === 3 ? { ...result, loss: NaN } : result;
      },
    };
    const error = await trainModel(store, poisoned, start(), options).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TrainingDivergedError);
    expect((error as TrainingDivergedError).message).toMatch(/diverged at step 3.*model of step 2/);
    const good = await trainModel(store, engine, start(), { ...options, steps: 2 });
    expect((error as TrainingDivergedError).lastGood.centroids).toEqual(good.centroids);
  });

  it('returns its optimiser states, continues from given ones, and follows a learning-rate schedule', async () => {
    const first = await trainModel(store, engine, start(), { ...options, steps: 4 });
    expect(first.optimizerState.head.step).toBe(4);
    expect(first.optimizerState.centroids.step).toBe(4);
    const fresh = await trainModel(store, engine, { head: first.head, centroids: first.centroids }, { ...options, steps: 4, seed: 9 });
    const kept = await trainModel(store, engine, { head: first.head, centroids: first.centroids }, { ...options, steps: 4, seed: 9, optimizerState: first.optimizerState });
    expect(kept.optimizerState.head.step).toBe(8);
    expect(kept.centroids).not.toEqual(fresh.centroids);
    expect(first.optimizerState.head.step).toBe(4); // the given state is not modified
    // A constant schedule is the plain run; a cosine schedule at its end (factor 0) leaves the model as it was.
    const constant = await trainModel(store, engine, start(), { ...options, steps: 3, learningRate: { schedule: 'constant', offset: 10, total: 20 } });
    expect(constant.centroids).toEqual((await trainModel(store, engine, start(), { ...options, steps: 3 })).centroids);
    const ended = await trainModel(store, engine, start(), { ...options, steps: 3, learningRate: { schedule: 'cosine', offset: 20, total: 20 } });
    expect(Array.from(ended.centroids)).toEqual(Array.from(start().centroids));
  });

  it('gives cosine factors from 1 down to 0 over the schedule', () => {
    expect(learningRateScale('cosine', 0, 100)).toBe(1);
    expect(learningRateScale('cosine', 50, 100)).toBeCloseTo(0.5, 12);
    expect(learningRateScale('cosine', 100, 100)).toBeCloseTo(0, 12);
    expect(learningRateScale('constant', 73, 100)).toBe(1);
    expect(parseLearningRateSchedule('cosine')).toBe('cosine');
    expect(() => parseLearningRateSchedule('linear')).toThrow(/constant or cosine/);
    expect(() => learningRateScale('cosine', 0, 0)).toThrow(/at least one step/);
  });

  it('measures assignment entropy from counts', () => {
    expect(assignmentEntropy([10, 0, 0])).toBe(0);
    expect(assignmentEntropy([5, 5])).toBeCloseTo(1, 12);
    expect(assignmentEntropy([])).toBe(0);
  });
});
