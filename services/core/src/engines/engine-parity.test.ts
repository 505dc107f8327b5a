// One suite, every engine: the tfjs (autodiff) and onnx (hand-derived backward) engines agree on the
// loss and on every gradient, in sampled- and full-size batches, with and without MOON and FedProx.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOnnxEngine } from './onnx/onnx-engine.js';
import { createTfjsEngine } from './tfjs/tfjs-engine.js';
import { randomStepCase, type StepCaseOptions } from './test-support/random-step-case.js';
import { HEAD_PARAM_NAMES, type TrainingEngine } from './engine.js';

/** Parity bound of the issue: relative error below 1e-3, measured against each tensor's largest entry. */
const PARITY_RTOL = 1e-3;

function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let scale = 0;
  let worst = 0;
  for (let i = 0; i < a.length; i++) scale = Math.max(scale, Math.abs(a[i]), Math.abs(b[i]));
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return scale === 0 ? 0 : worst / scale;
}

let onnx: TrainingEngine;
let tfjs: TrainingEngine;
beforeAll(async () => {
  onnx = await createOnnxEngine({ threads: 1 });
  tfjs = await createTfjsEngine();
});
afterAll(async () => {
  await onnx.dispose();
  await tfjs.dispose();
});

const cases: [string, StepCaseOptions][] = [
  ['sampled (121 cells)', { cells: 121, channels: 24, codeDim: 7, images: 8, queries: 4, k: 5 }],
  ['full grid (8 x 8 cells)', { cells: 64, channels: 24, codeDim: 7, images: 8, queries: 4, k: 5 }],
  ['sampled with lambda, MOON and FedProx on the nonlinear branch', { cells: 121, channels: 16, codeDim: 5, images: 6, queries: 3, lambda: 0.3, moon: 'nonlinear', prox: 'nonlinear' }],
  ['full with MOON and FedProx on the whole head', { cells: 64, channels: 16, codeDim: 5, images: 6, queries: 3, moon: 'head', prox: 'head' }],
];

describe('engine parity (onnx vs tfjs)', () => {
  for (const [label, options] of cases) {
    it(label, async () => {
      const c = randomStepCase({ seed: 21, ...options });
      const [a, b] = await Promise.all([
        onnx.step(c.head, c.centroids, c.shape, c.batch, c.config),
        tfjs.step(c.head, c.centroids, c.shape, c.batch, c.config),
      ]);
      expect(Math.abs(a.loss - b.loss) / Math.max(1e-6, Math.abs(b.loss))).toBeLessThan(PARITY_RTOL);
      for (const part of ['corr', 'cluster', 'moon', 'prox'] as const) expect(Math.abs(a.parts[part] - b.parts[part])).toBeLessThan(1e-5 + PARITY_RTOL * Math.abs(b.parts[part]));
      for (const name of HEAD_PARAM_NAMES) expect(relativeError(a.headGrad[name], b.headGrad[name]), name).toBeLessThan(PARITY_RTOL);
      expect(relativeError(a.centroidGrad, b.centroidGrad), 'centroids').toBeLessThan(PARITY_RTOL);
      expect(Array.from(a.clusterCounts)).toEqual(Array.from(b.clusterCounts));
      const codesA = await onnx.codes(c.head, c.shape, c.batch.features, c.batch.images * c.batch.cells);
      const codesB = await tfjs.codes(c.head, c.shape, c.batch.features, c.batch.images * c.batch.cells);
      expect(relativeError(codesA, codesB)).toBeLessThan(PARITY_RTOL);
    });
  }
});
