// The simulator's mechanisms on a tiny generated dataset: server optimiser, participants keeping their
// Adam states, learning-rate schedule, augmented views, and label-free model selection with stopping.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { Backbone } from '../backbone/backbone.js';
import { openDataset, type Dataset } from '../dataset/dataset.js';
import { createOnnxEngine } from '../engines/onnx/onnx-engine.js';
import { HEAD_PARAM_NAMES, type HeadParams, type TrainingEngine } from '../engines/engine.js';
import { initHead } from '../head/head-init.js';
import { createRng } from '../math/rng.js';
import { meanPairwiseCosine } from '../math/vectors.js';
import { makeTempDir, makeTinyDataset, writeTinyBackbones } from '../test-support/fixtures.js';
import { selectVersion } from './model-selection.js';
import { runBaseline } from './baselines.js';
import { evaluateModel, simulateFederation, type SimulationOptions } from './simulate.js';

let dir: { path: string; remove: () => Promise<void> };
let dataset: Dataset;
let backbone: Backbone;
let engine: TrainingEngine;

beforeAll(async () => {
  dir = await makeTempDir();
  await makeTinyDataset(join(dir.path, 'data'), { images: 12, width: 32, height: 24 });
  dataset = await openDataset(join(dir.path, 'data'));
  backbone = await Backbone.open((await writeTinyBackbones(join(dir.path, 'models'))).cnn, { threads: 1 });
  engine = await createOnnxEngine({ threads: 1 });
});
afterAll(async () => {
  await engine.dispose();
  await backbone.close();
  await dir.remove();
});

const options = (extra: Partial<SimulationOptions> = {}): SimulationOptions => ({
  clients: 2, partition: { kind: 'domain' }, strategy: 'fedavg', modules: { head: true, centroids: true, weighted: true }, regularizer: 'none', regularizerScope: 'nonlinear',
  rounds: 3, localSteps: 3, k: 2, seed: 1, codeDim: 4, batch: { queries: 3, negatives: 2, samplePoints: 4 }, robust: 'none', cacheDir: join(dir.path, 'cache'), ...extra,
});

const heads = (result: Awaited<ReturnType<typeof simulateFederation>>) => Array.from(result.global.head.l2Weight);

describe('simulateFederation mechanisms', () => {
  it('FedAvgM with lr 1 and no momentum is FedAvg bit for bit; momentum and FedAdam change the model', async () => {
    const plain = await simulateFederation(dataset, undefined, backbone, engine, options());
    const identity = await simulateFederation(dataset, undefined, backbone, engine, options({ serverOptimizer: 'fedavgm:1:0' }));
    expect(heads(identity)).toEqual(heads(plain));
    expect(Array.from(identity.global.centroids)).toEqual(Array.from(plain.global.centroids));
    const momentum = await simulateFederation(dataset, undefined, backbone, engine, options({ serverOptimizer: 'fedavgm' }));
    expect(heads(momentum)).not.toEqual(heads(plain));
    const adam = await simulateFederation(dataset, undefined, backbone, engine, options({ serverOptimizer: 'fedadam' }));
    expect(heads(adam).every(Number.isFinite)).toBe(true);
    await expect(simulateFederation(dataset, undefined, backbone, engine, options({ serverOptimizer: 'fedadam', modules: { head: false, centroids: true, weighted: true } }))).rejects.toThrow(/needs module E/);
  });

  it('participants keeping their Adam states, a cosine schedule and flipped views each change training; the paper settings are the defaults', async () => {
    const plain = await simulateFederation(dataset, undefined, backbone, engine, options());
    const paper = await simulateFederation(dataset, undefined, backbone, engine, options({ serverOptimizer: 'none', localOptimizer: 'reset', lrSchedule: 'constant', augment: 'none', selection: 'none' }));
    expect(heads(paper)).toEqual(heads(plain));
    for (const extra of [{ localOptimizer: 'keep' }, { lrSchedule: 'cosine' }, { augment: 'flip' }] as const) {
      const changed = await simulateFederation(dataset, undefined, backbone, engine, options(extra));
      expect(heads(changed), JSON.stringify(extra)).not.toEqual(heads(plain));
    }
    const logs: string[] = [];
    const flipped = await simulateFederation(dataset, undefined, backbone, engine, options({ augment: 'flip', rounds: 1 }), { log: (l) => logs.push(l) });
    expect(logs.join('\n')).toMatch(/participant 0: 6 images, 2 views/);
    expect(flipped.partition.map((p) => p.images)).toEqual([6, 6]);
    await expect(simulateFederation(dataset, undefined, backbone, engine, options({ localOptimizer: 'forget' as never }))).rejects.toThrow(/reset or keep/);
  });

  it('scores each round\'s starting model on held-out images and selects a version by the rule', async () => {
    const result = await simulateFederation(dataset, dataset, backbone, engine, options({ rounds: 4, selection: 'loss:0.2:0' }));
    expect(result.rounds.map((r) => r.score?.version)).toEqual([0, 1, 2, 3]);
    for (const record of result.rounds) {
      expect(record.score!.participants).toHaveLength(2);
      expect(Number.isFinite(record.score!.value)).toBe(true);
    }
    const scores = new Map(result.rounds.map((r) => [r.score!.version, r.score!.value!]));
    const { selected } = selectVersion(scores, 4, 0);
    expect(result.selection).toMatchObject({ rule: 'loss:0.2:0', selectedVersion: selected });
    expect(result.selection!.metrics!.mIoU).toBe(selected === 0 ? result.selection!.metrics!.mIoU : result.rounds[selected - 1].metrics!.mIoU);
    // Scoring reads the held-out images only: the same run again gives the same scores.
    const again = await simulateFederation(dataset, dataset, backbone, engine, options({ rounds: 4, selection: 'loss:0.2:0' }));
    expect(again.rounds.map((r) => r.score!.value)).toEqual(result.rounds.map((r) => r.score!.value));
  });

  it('stops when the patience runs out, evaluates the round it stopped after, and can go back to the initial model', async () => {
    // Seed 3: the score of version 1 is worse than that of the initial model, so patience 1 stops after round 2.
    const result = await simulateFederation(dataset, dataset, backbone, engine, options({ rounds: 8, localSteps: 2, seed: 3, selection: 'loss:0.2:1', evalEvery: 100 }));
    expect(result.rounds).toHaveLength(2);
    expect(result.rounds[1].score!.value!).toBeGreaterThan(result.rounds[0].score!.value!);
    expect(result.selection).toMatchObject({ selectedVersion: 0, stoppedAfterRound: 2 });
    expect(result.final).toBeDefined();
    expect(result.selection!.metrics).toBeDefined();
    // Seed 1: scores fall until version 6 and rise at 7, in the last round: version 6 is selected, no early stop.
    const late = await simulateFederation(dataset, dataset, backbone, engine, options({ rounds: 8, localSteps: 3, seed: 1, selection: 'loss:0.2:1', evalEvery: 100 }));
    expect(late.rounds).toHaveLength(8);
    expect(late.selection).toMatchObject({ selectedVersion: 6 });
    expect(late.selection!.stoppedAfterRound).toBeUndefined();
  });

  it('records how much the participants\' head deltas agree each round (mean pairwise cosine)', async () => {
    // Without module E participants keep their heads, so round 1's deltas are the kept heads minus the initial head.
    const result = await simulateFederation(dataset, undefined, backbone, engine, options({ rounds: 1, modules: { head: false, centroids: true, weighted: true } }));
    const channels = result.global.head.l2Bias.length;
    const initial = initHead({ channels, codeDim: 4 }, createRng(1));
    const deltas = result.clientHeads!.map((head) => Float32Array.from(HEAD_PARAM_NAMES.flatMap((name) => Array.from(head[name], (v, i) => v - initial[name][i]))));
    expect(deltas.every((d) => d.some((v) => v !== 0))).toBe(true);
    expect(result.rounds[0].updateAgreement).toBeCloseTo(meanPairwiseCosine(deltas)!, 12);
    const single = await simulateFederation(dataset, undefined, backbone, engine, options({ rounds: 1, clients: 1, partition: { kind: 'iid' } }));
    expect(single.rounds[0].updateAgreement).toBeUndefined();
  });

  it('evaluates the mean of the last N global models as a readout, without changing training', async () => {
    const versions: { head: HeadParams; centroids: Float32Array }[] = [];
    const plain = await simulateFederation(dataset, dataset, backbone, engine, options({ rounds: 3 }), { onRound: (_, global) => void versions.push(global) });
    const tail = await simulateFederation(dataset, dataset, backbone, engine, options({ rounds: 3, tailAverage: 2 }));
    expect(heads(tail)).toEqual(heads(plain));
    expect(tail.rounds.map((r) => r.metrics!.mIoU)).toEqual(plain.rounds.map((r) => r.metrics!.mIoU));
    expect(plain.tailAverage).toBeUndefined();
    expect(tail.rounds.map((r) => r.tailAverage?.fromVersion)).toEqual([undefined, 1, 2]);
    // The mean of versions 2 and 3, element by element (float64 sum, one rounding).
    const [second, third] = versions.slice(1);
    const mean = (a: Float32Array, b: Float32Array) => Array.from(a, (v, i) => Math.fround((v + b[i]) / 2));
    expect(tail.tailAverage).toMatchObject({ rounds: 2, fromVersion: 2 });
    for (const name of HEAD_PARAM_NAMES) expect(Array.from(tail.tailAverage!.model.head[name]), name).toEqual(mean(second.head[name], third.head[name]));
    expect(Array.from(tail.tailAverage!.model.centroids)).toEqual(mean(second.centroids, third.centroids));
    expect(Array.from(tail.tailAverage!.model.centroids)).not.toEqual(Array.from(third.centroids));
    const direct = await evaluateModel(dataset, backbone, engine, [tail.tailAverage!.model], { k: 2, codeDim: 4, cacheDir: join(dir.path, 'cache') });
    expect(tail.tailAverage!.metrics!.mIoU).toBe(direct.mIoU);
    expect(tail.rounds[2].tailAverage!.metrics.mIoU).toBe(direct.mIoU);
    await expect(simulateFederation(dataset, dataset, backbone, engine, options({ tailAverage: 1 }))).rejects.toThrow(/N >= 2/);
    await expect(simulateFederation(dataset, dataset, backbone, engine, options({ tailAverage: 2.5 }))).rejects.toThrow(/N >= 2/);
    await expect(simulateFederation(dataset, dataset, backbone, engine, options({ tailAverage: 2, modules: { head: true, centroids: false, weighted: true } }))).rejects.toThrow(/modules E and C/);
  });

  it('baselines train on the augmented views with the schedule too', async () => {
    const plain = await runBaseline('centralized', dataset, dataset, backbone, engine, options());
    const augmented = await runBaseline('centralized', dataset, dataset, backbone, engine, options({ augment: 'flip', lrSchedule: 'cosine' }));
    expect(augmented.final!.mIoU).toBeGreaterThanOrEqual(0);
    expect(augmented.runs[0].images).toBe(12);
    expect(plain.runs[0].images).toBe(12);
  });
});
