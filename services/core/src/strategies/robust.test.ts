// The robust layer: its maths on hand-computed numbers, then whole rounds through the strategies
// (clipping, trimming, median, Krum, sample caps, refused updates) and the steps driven from storage.

import { describe, expect, it } from 'vitest';
import { createRng } from '../math/rng.js';
import { initCentroids, initHead } from '../head/head-init.js';
import { HEAD_PARAM_NAMES, type HeadParams } from '../engines/engine.js';
import { createStrategy } from './index.js';
import { runAggregation, runAggregationAsync } from './aggregation-steps.js';
import {
  capSampleCounts, clipFactors, coordinateMedian, coordinateTrimmedMean, formatRobustRule, krumSelect, lowerMedian, parseRobustRule, trimCount,
} from './robust.js';
import type { AggregationContext } from './strategy.js';
import type { ClientUpdate } from './update.js';

const f32 = (...values: number[]) => Float32Array.from(values);

describe('robust maths', () => {
  it('parses and formats every rule, and refuses malformed ones', () => {
    for (const text of ['none', 'clip', 'clip:3', 'trimmed-mean:0.1', 'median', 'krum', 'krum:2', 'multi-krum', 'multi-krum:1', 'multi-krum:1:3']) {
      expect(formatRobustRule(parseRobustRule(text)), text).toBe(text);
    }
    expect(parseRobustRule('trimmed-mean')).toEqual({ kind: 'trimmed-mean', beta: 0.2 });
    expect(parseRobustRule('clip')).toEqual({ kind: 'clip', multiplier: 2 });
    for (const bad of ['clip:0.5', 'trimmed-mean:0.5', 'krum:-1', 'krum:1.5', 'median:2', 'mean', 'clip:x']) expect(() => parseRobustRule(bad), bad).toThrow(/robust rule|unknown robust rule/);
  });

  it('takes the lower median, caps sample counts at twice it, and clips norms beyond twice the median norm', () => {
    expect(lowerMedian([5, 1, 3])).toBe(3);
    expect(lowerMedian([10, 1_000_000_000])).toBe(10);
    expect(capSampleCounts([100, 120, 1_000_000_000, 90])).toEqual([100, 120, 200, 90]);
    const { factors, threshold } = clipFactors([1, 2, 3, 100]);
    expect(threshold).toBe(4);
    expect(factors).toEqual([1, 1, 1, 0.04]);
  });

  it('computes coordinate-wise trimmed means and medians', () => {
    const arrays = [f32(1, 10), f32(2, 20), f32(3, 30), f32(100, -1000), f32(4, 40)];
    expect(Array.from(coordinateTrimmedMean(arrays, 1))).toEqual([3, 20]); // [2,3,4] and [10,20,30]
    expect(Array.from(coordinateMedian(arrays))).toEqual([3, 20]);
    expect(Array.from(coordinateMedian([f32(1), f32(5), f32(2), f32(100)]))).toEqual([3.5]);
    expect(trimCount(6, 0.2)).toBe(1);
    expect(trimCount(2, 0.4)).toBe(0);
    expect(() => coordinateTrimmedMean(arrays, 3)).toThrow(/cannot trim/);
  });

  it("selects Krum's update: the lowest sum of squared distances to its n - f - 2 nearest others", () => {
    // Points on a line: 0, 1, 2 and an outlier at 10; f = 1 so each sums its 1 nearest neighbour.
    const points = [0, 1, 2, 10];
    const d = new Float64Array(16);
    points.forEach((a, i) => points.forEach((b, j) => (d[i * 4 + j] = (a - b) ** 2)));
    const krum = krumSelect(d, 4, 1, 1);
    expect(krum.scores).toEqual([1, 1, 1, 64]);
    expect(krum.chosen).toEqual([0]);
    expect(krumSelect(d, 4, 1, 3).chosen).toEqual([0, 1, 2]);
  });
});

const shape = { channels: 6, codeDim: 4 };
const K = 3;
const previous = (() => {
  const rng = createRng(99);
  return { head: initHead(shape, rng), centroids: initCentroids(K, shape.codeDim, rng) };
})();

function context(robust: string, overrides: Partial<AggregationContext> = {}): AggregationContext {
  return { k: K, codeDim: shape.codeDim, channels: shape.channels, seed: 5, modules: { head: true, centroids: true, weighted: true }, previous, robust: parseRobustRule(robust), ...overrides };
}

/** Previous model plus a small random delta: an honest participant's update. */
function honest(index: number, samples = 50): ClientUpdate {
  const rng = createRng(1000 + index);
  const nudge = (values: Float32Array) => values.map((v) => v + 0.01 * rng.normal());
  return {
    clientId: `client-${index}`,
    head: Object.fromEntries(HEAD_PARAM_NAMES.map((name) => [name, nudge(previous.head[name])])) as unknown as HeadParams,
    centroids: nudge(previous.centroids),
    samples,
    backboneSha256: 'a'.repeat(64),
    featureKey: 'key',
  };
}

/** The update's delta multiplied by `factor` (the scale attack). */
function scaled(update: ClientUpdate, factor: number): ClientUpdate {
  const scale = (values: Float32Array, base: Float32Array) => values.map((v, i) => base[i] + factor * (v - base[i]));
  return {
    ...update,
    head: Object.fromEntries(HEAD_PARAM_NAMES.map((name) => [name, scale(update.head[name], previous.head[name])])) as unknown as HeadParams,
    centroids: scale(update.centroids, previous.centroids),
  };
}

function distanceFromPrevious(head: HeadParams): number {
  let sum = 0;
  for (const name of HEAD_PARAM_NAMES) head[name].forEach((v, i) => (sum += (v - previous.head[name][i]) ** 2));
  return Math.sqrt(sum);
}

describe('robust rounds', () => {
  const updates = [0, 1, 2, 3, 4].map((i) => honest(i));
  const attacked = [...updates.slice(0, 4), scaled(honest(4), 1e6)];

  it('none: a scaled update drags the head away; clip keeps the result within twice the median delta', () => {
    const fedavg = createStrategy('fedavg');
    const plain = fedavg.aggregate(attacked, context('none'));
    expect(distanceFromPrevious(plain.head)).toBeGreaterThan(1000);
    const clipped = fedavg.aggregate(attacked, context('clip'));
    const robust = clipped.details.robust as { clipped: string[]; headClipThreshold: number; headClipFactors: number[] };
    expect(robust.clipped).toEqual(['client-4']);
    expect(robust.headClipFactors.slice(0, 4)).toEqual([1, 1, 1, 1]);
    expect(distanceFromPrevious(clipped.head)).toBeLessThan(robust.headClipThreshold);
    // Nobody attacking, honest deltas of similar size: clip changes nothing.
    const honestOnly = fedavg.aggregate(updates, context('clip'));
    expect(honestOnly.head).toEqual(fedavg.aggregate(updates, context('none')).head);
  });

  it('trimmed mean and median ignore one outlier per coordinate; Krum drops it', () => {
    const reference = createStrategy('fedavg').aggregate(updates.slice(0, 4), context('none'));
    for (const rule of ['trimmed-mean:0.2', 'median', 'krum', 'multi-krum']) {
      const result = createStrategy('fedavg').aggregate(attacked, context(rule));
      expect(distanceFromPrevious(result.head), rule).toBeLessThan(2 * distanceFromPrevious(reference.head));
    }
    const krum = createStrategy('fedavg').aggregate(attacked, context('multi-krum:1'));
    expect((krum.details.robust as { dropped: string[] }).dropped).toEqual(['client-4']);
  });

  it('with a FedCC merge, trims outlying pooled centroids per slot before clustering', () => {
    const result = createStrategy('fedcc-kmeans').aggregate(attacked, context('trimmed-mean:0.2'));
    const robust = result.details.robust as { trimmedPooledRows: Record<string, number> };
    expect(robust.trimmedPooledRows['client-4']).toBe(K);
    expect(result.details.pooledRows).toBe(K * 4);
    for (const value of result.centroids) expect(Math.abs(value)).toBeLessThan(10);
  });

  it('caps a participant that claims a billion images at twice the median count', () => {
    const liar = { ...scaled(honest(4), 1), samples: 1_000_000_000 };
    const result = createStrategy('fedavg').aggregate([...updates.slice(0, 4), liar], context('clip'));
    expect((result.details.robust as { countedSamples: number[] }).countedSamples).toEqual([50, 50, 50, 50, 100]);
    expect(result.details.weights).toEqual([50 / 300, 50 / 300, 50 / 300, 50 / 300, 100 / 300]);
  });

  it('refuses a non-finite update, never averages it', () => {
    const poisoned = honest(4);
    poisoned.head.l2Weight[3] = Number.NaN;
    expect(() => createStrategy('fedavg').aggregate([...updates.slice(0, 4), poisoned], context('clip'))).toThrow(/non-finite|NaN/);
  });

  it('refuses every non-finite value under every rule, naming the client, tensor and first bad index', () => {
    const cases = [['l2Weight', 3, Number.NaN], ['l1Bias', 0, Number.POSITIVE_INFINITY], ['centroids', 5, Number.NEGATIVE_INFINITY]] as const;
    for (const rule of ['none', 'clip', 'median', 'krum']) {
      for (const head of [true, false]) {
        for (const [tensor, index, value] of cases) {
          const poisoned = honest(4);
          (tensor === 'centroids' ? poisoned.centroids : poisoned.head[tensor])[index] = value;
          // A second, later bad value: the first one is named.
          poisoned.centroids[K * shape.codeDim - 1] = Number.NaN;
          const what = tensor === 'centroids' ? 'centroids' : `head.${tensor}`;
          const run = () => createStrategy('fedcc-kmeans').aggregate([...updates.slice(0, 4), poisoned], context(rule, { modules: { head, centroids: true, weighted: true } }));
          expect(run, `${rule} ${head} ${tensor}`).toThrow(new RegExp(`: ${what.replace('.', '\\.')} holds ${value} at index ${index}$`));
          expect(() => run(), rule).toThrow(expect.objectContaining({ problem: 'non-finite', clientId: 'client-4', status: 400 }));
        }
      }
    }
  });

  it('gives the same result driven from storage, reading updates once unless a clip applies', async () => {
    for (const [rule, list, reads] of [['clip', updates, 5], ['clip', attacked, 10], ['none', attacked, 5], ['median', attacked, 5]] as const) {
      const strategy = createStrategy('fedcc-kmeans');
      const inMemory = strategy.aggregate(list, context(rule));
      let loads = 0;
      const stored = await runAggregationAsync(strategy.steps(list.map((u) => ({ clientId: u.clientId, samples: u.samples })), context(rule)), async (i) => {
        loads++;
        return list[i];
      });
      expect(stored.head, rule).toEqual(inMemory.head);
      expect(stored.centroids, rule).toEqual(inMemory.centroids);
      expect(loads, `${rule} reads`).toBe(reads);
    }
    const steps = createStrategy('fedavg').steps([{ clientId: 'client-0', samples: 5 }], context('none'));
    expect(() => runAggregation(steps, () => updates[1])).toThrow(/should be client client-0's/);
  });
});
