// The tfjs engine against a hand-worked step, central finite differences of the float64 reference
// loss (reference-loss.ts), and that reference on sampled-size and full-size batches.

import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ShapeError } from '../../errors.js';
import { createRng } from '../../math/rng.js';
import { FLOAT32_TOLERANCE, expectClose, expectCloseScalar } from '../../test-support/expect-close.js';
import { HEAD_PARAM_NAMES, type HeadParams, type StepBatch, type StepConfig, type StepResult, type TrainingEngine } from '../engine.js';
import { referenceCodes, referenceLoss, type HeadValues, type ReferenceLossResult } from '../reference-loss.js';
import { randomStepCase, type StepCase } from '../test-support/random-step-case.js';
import { matMul2d, matMulConstantLeft } from './matmul-2d.js';
import { createTfjsEngine } from './tfjs-engine.js';

let engine: TrainingEngine;
const logLines: string[] = [];
beforeAll(async () => {
  engine = await createTfjsEngine({ log: (line) => logLines.push(line) });
});
afterAll(() => engine.dispose());

const step = (c: StepCase): Promise<StepResult> => engine.step(c.head, c.centroids, c.shape, c.batch, c.config);

describe('tfjs engine: backend', () => {
  it('logs why each faster backend was skipped and names the one in use', () => {
    expect(engine.name).toBe('tfjs');
    expect(engine.description).toMatch(/^tfjs \d+\.\d+\.\d+ \((wasm|tensorflow) backend/);
    expect(logLines.length).toBeGreaterThan(0);
    for (const line of logLines) expect(line).toMatch(/^tfjs: @tensorflow\/tfjs-node(-gpu)? /);
  });
});

describe('tfjs engine: a hand-worked step', () => {
  // Two images of two cells, C = D = 2. The head is S = X (W1 = identity, everything else zero), so
  // the codes are the raw features and every number below can be followed on paper.
  const zeros = (n: number) => new Float32Array(n);
  const head: HeadParams = {
    l1Weight: Float32Array.of(1, 0, 0, 1),
    l1Bias: zeros(2),
    l2Weight: zeros(4),
    l2Bias: zeros(2),
    l3Weight: zeros(4),
    l3Bias: zeros(2),
  };
  const shape = { channels: 2, codeDim: 2 };
  const batch: StepBatch = {
    images: 2,
    cells: 2,
    channels: 2,
    queries: 1,
    // Codes: image 0 has unit rows (1, 0), (0.6, 0.8); image 1 has (-0.6, 0.8), (0.6, 0.8).
    features: Float32Array.of(2, 0, 1.5, 2, -3, 4, 0.6, 0.8),
    // Unit features: image 0 (1, 0), (0.6, 0.8); image 1 (0, 1), (0.6, 0.8).
    featuresUnit: Float32Array.of(1, 0, 0.6, 0.8, 0, 1, 0.6, 0.8),
    dropMask1: Float32Array.of(1, 1, 1, 1),
    dropMask2: Float32Array.of(1, 1, 1, 1),
    pairA: Int32Array.of(0, 0),
    pairB: Int32Array.of(0, 1),
    pairWeight: Float32Array.of(1, 0.5),
    pairShift: Float32Array.of(0.5, 0.2),
  };
  // Unit centroids (1, 0) and (1, 1)/sqrt(2).
  const centroids = Float32Array.of(2, 0, 1, 1);
  const config: StepConfig = { k: 2, lambda: 0.5 };

  // Pair (0, 0): F = C = [[1, .6], [.6, 1]], equal row means so Fc = F;
  //   -mean(C * (Fc - .5)) = -mean([[.5, .06], [.06, .5]]) = -0.28, weight 1.
  // Pair (0, 1): F = [[0, .6], [.8, 1]], row means (.3, .9), mean .6: Fc = [[.3, .9], [.5, .7]];
  //   C = [[-.6, .6], [.28, 1]] clamps to [[0, .6], [.28, 1]];
  //   -mean(max(C, 0) * (Fc - .2)) = -mean([[0, .42], [.084, .5]]) = -0.251, weight 0.5.
  const corr = -0.28 + 0.5 * -0.251;
  // Query cells pick centroid 0 (inner 1) and centroid 1 (inner 1.4 / sqrt 2); the one off-diagonal
  // pair of unit centroids has cosine 1 / sqrt 2.
  const cluster = -(1 + 1.4 / Math.SQRT2) / 2 + 0.5 * (1 / Math.SQRT2);

  it('matches the hand-computed correspondence and centroid losses', async () => {
    for (const result of [await engine.step(head, centroids, shape, batch, config), referenceLoss(head, centroids, shape, batch, config)]) {
      expectCloseScalar(result.parts.corr, corr, FLOAT32_TOLERANCE, 'corr');
      expectCloseScalar(result.parts.cluster, cluster, FLOAT32_TOLERANCE, 'cluster');
      expect(result.parts.moon).toBe(0);
      expect(result.parts.prox).toBe(0);
      expectCloseScalar(result.loss, corr + cluster, FLOAT32_TOLERANCE, 'loss');
      expect(Array.from(result.clusterCounts)).toEqual([1, 1]);
    }
  });

  it('matches hand-computed MOON and FedProx terms and honours their scope', async () => {
    // MOON on S: the global head is the local one (cosine 1); the previous head swaps the two
    // channels, so cell 0 gives (0, 2) against (2, 0) (cosine 0) and cell 1 (2, 1.5) against
    // (1.5, 2) (cosine 0.96).
    const previousHead = { ...head, l1Weight: Float32Array.of(0, 1, 1, 0) };
    const softplus = (x: number) => Math.log1p(Math.exp(x));
    const moon = (softplus((0 - 1) / 0.5) + softplus((0.96 - 1) / 0.5)) / 2;
    // FedProx: the global head differs only in b1 = (1, -2): mu / 2 * (1 + 4) on the whole head,
    // nothing on the nonlinear branch.
    const proxGlobal = { ...head, l1Bias: Float32Array.of(1, -2) };
    const withRegularizers = (proxScope: 'head' | 'nonlinear'): StepConfig => ({
      ...config,
      moon: { globalHead: head, previousHead, tau: 0.5, weight: 1, scope: 'head' },
      prox: { globalHead: proxGlobal, mu: 0.1, scope: proxScope },
    });
    for (const [proxScope, prox] of [['head', 0.25], ['nonlinear', 0]] as const) {
      const c = withRegularizers(proxScope);
      for (const result of [await engine.step(head, centroids, shape, batch, c), referenceLoss(head, centroids, shape, batch, c)]) {
        expectCloseScalar(result.parts.moon, moon, FLOAT32_TOLERANCE, 'moon');
        expectCloseScalar(result.parts.prox, prox, FLOAT32_TOLERANCE, `prox (${proxScope})`);
        expectCloseScalar(result.loss, corr + cluster + moon + prox, FLOAT32_TOLERANCE, 'loss');
      }
    }
  });
});

// Central differences of the float64 reference loss. A relative step of 1e-4 leaves truncation error
// near 1e-8 and float64 rounding near 1e-12, far below the float32 error of the engine's gradients.
const FD_STEP = 1e-4;
// Engine gradients are float32 sums over a few hundred terms; 1e-3 relative leaves room for that
// while catching any wrong term. Components below 1% of their tensor's largest are compared
// against that 1% instead of their own size.
const FD_RTOL = 1e-3;
const FD_TINY = 1e-2;

interface FdOutcome {
  checked: number;
  skipped: string[];
  failures: string[];
}

/** Compares every gradient component of `result` with central differences of `referenceLoss`. */
function checkAgainstFiniteDifferences(c: StepCase, result: StepResult): FdOutcome {
  // Float64 copies, so that theta +- h is not rounded to float32.
  const head64 = Object.fromEntries(HEAD_PARAM_NAMES.map((n) => [n, Float64Array.from(c.head[n])])) as Record<string, Float64Array>;
  const centroids64 = Float64Array.from(c.centroids);
  const evaluate = () => referenceLoss(head64 as unknown as HeadValues, centroids64, c.shape, c.batch, c.config);
  const basePattern = evaluate().pattern;
  // The codes enter the centroid loss detached (engine.ts): the head's gradient is that of the
  // other three parts, and the centroids appear in the centroid loss only.
  const headObjective = (r: ReferenceLossResult) => r.loss - r.parts.cluster;
  const centroidObjective = (r: ReferenceLossResult) => r.parts.cluster;
  const targets: [string, Float64Array, Float32Array, (r: ReferenceLossResult) => number][] = [
    ...HEAD_PARAM_NAMES.map((n) => [n, head64[n], result.headGrad[n], headObjective] as [string, Float64Array, Float32Array, typeof headObjective]),
    ['centroids', centroids64, result.centroidGrad, centroidObjective],
  ];
  const outcome: FdOutcome = { checked: 0, skipped: [], failures: [] };
  for (const [name, values, analytic, objective] of targets) {
    const numeric = new Float64Array(values.length).fill(NaN);
    for (let i = 0; i < values.length; i++) {
      const original = values[i];
      const h = FD_STEP * Math.max(1, Math.abs(original));
      values[i] = original + h;
      const up = evaluate();
      values[i] = original - h;
      const down = evaluate();
      values[i] = original;
      // A ReLU or an argmax flipped inside [theta - h, theta + h]: no derivative to compare with.
      if (up.pattern !== basePattern || down.pattern !== basePattern) {
        outcome.skipped.push(`${name}[${i}]`);
        continue;
      }
      numeric[i] = (objective(up) - objective(down)) / (2 * h);
    }
    const scale = numeric.reduce((m, v) => (Number.isNaN(v) ? m : Math.max(m, Math.abs(v))), 0);
    for (let i = 0; i < values.length; i++) {
      if (Number.isNaN(numeric[i])) continue;
      outcome.checked++;
      const error = Math.abs(analytic[i] - numeric[i]) / Math.max(Math.abs(numeric[i]), FD_TINY * scale, 1e-12);
      if (!(error < FD_RTOL)) outcome.failures.push(`${name}[${i}]: engine ${analytic[i]}, finite differences ${numeric[i]}`);
    }
  }
  return outcome;
}

describe('tfjs engine: gradients against finite differences of the reference loss', () => {
  // I = 4, N = 5, C = 6, D = 3, K = 3; six pairs: a self pair, a neighbour and a negative per query.
  const variants: { label: string; options: Parameters<typeof randomStepCase>[0] }[] = [
    { label: 'correspondence + centroid loss, lambda 0.5', options: { seed: 21, lambda: 0.5 } },
    { label: 'MOON and FedProx on the nonlinear branch', options: { seed: 22, lambda: 0.5, moon: 'nonlinear', prox: 'nonlinear' } },
    { label: 'MOON and FedProx on the whole head', options: { seed: 23, lambda: 0.5, moon: 'head', prox: 'head' } },
    { label: 'one centroid (no repulsion term)', options: { seed: 24, k: 1, lambda: 0.5, moon: 'head', prox: 'nonlinear' } },
  ];
  for (const { label, options } of variants) {
    it(label, async () => {
      const c = randomStepCase(options);
      const outcome = checkAgainstFiniteDifferences(c, await step(c));
      if (outcome.skipped.length > 0) console.info(`${label}: skipped at a ReLU or argmax flip: ${outcome.skipped.join(', ')}`);
      expect(outcome.failures).toEqual([]);
      // 87 to 93 components in all; a flip within a 1e-4 step is rare.
      expect(outcome.checked).toBeGreaterThan(0.9 * (outcome.checked + outcome.skipped.length));
    });
  }
});

describe('tfjs engine: agrees with the float64 reference', () => {
  const sizes = [
    { label: 'sampled-size batch (11 x 11 = 121 cells)', cells: 121 },
    { label: 'full-size batch (8 x 8 = 64 cells)', cells: 64 },
  ];
  for (const { label, cells } of sizes) {
    it(label, async () => {
      const c = randomStepCase({ seed: cells, images: 6, queries: 3, cells, channels: 32, codeDim: 8, k: 5, lambda: 0.5, moon: 'nonlinear', prox: 'head' });
      const result = await step(c);
      const reference = referenceLoss(c.head, c.centroids, c.shape, c.batch, c.config);
      expectCloseScalar(result.loss, reference.loss, FLOAT32_TOLERANCE, 'loss');
      for (const part of ['corr', 'cluster', 'moon', 'prox'] as const) {
        expectCloseScalar(result.parts[part], reference.parts[part], FLOAT32_TOLERANCE, part);
      }
      expect(Array.from(result.clusterCounts)).toEqual(Array.from(reference.clusterCounts));
    });
  }

  it('computes inference codes as the reference head forward', async () => {
    const c = randomStepCase({ seed: 5, channels: 32, codeDim: 8 });
    const cells = 50;
    const rng = createRng(6);
    const features = Float32Array.from({ length: cells * 32 }, () => rng.normal());
    const codes = await engine.codes(c.head, c.shape, features, cells);
    expectClose(codes, referenceCodes(c.head, c.shape, features, cells), FLOAT32_TOLERANCE, 'codes');
  });
});

describe('tfjs engine: plain 2-D products', () => {
  it('have the gradients of tf.matMul', () => {
    const rng = createRng(7);
    const random = (rows: number, cols: number) => tf.tensor2d(Float32Array.from({ length: rows * cols }, () => rng.normal()), [rows, cols]);
    const [a, b, weights] = [random(5, 4), random(4, 3), random(5, 3)];
    const lossWith = (product: (x: tf.Tensor2D, y: tf.Tensor2D) => tf.Tensor2D) => (x: tf.Tensor, y: tf.Tensor) =>
      tf.sum(tf.mul(product(x as tf.Tensor2D, y as tf.Tensor2D), weights)) as tf.Scalar;
    const expected = tf.grads(lossWith((x, y) => tf.matMul(x, y)))([a, b]);
    const both = tf.grads(lossWith(matMul2d))([a, b]);
    const rightOnly = tf.grads((y: tf.Tensor) => lossWith(matMulConstantLeft)(a, y))([b]);
    expectClose(both[0].dataSync(), expected[0].dataSync(), FLOAT32_TOLERANCE, 'dA');
    expectClose(both[1].dataSync(), expected[1].dataSync(), FLOAT32_TOLERANCE, 'dB');
    expectClose(rightOnly[0].dataSync(), expected[1].dataSync(), FLOAT32_TOLERANCE, 'dB, constant A');
    tf.dispose([a, b, weights, ...expected, ...both, ...rightOnly]);
  });
});

describe('tfjs engine: resources and input checks', () => {
  it('leaves no tensor behind across steps', async () => {
    const c = randomStepCase({ seed: 9, moon: 'head', prox: 'head', lambda: 0.5 });
    await step(c); // first use may allocate backend state
    const before = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) {
      await step(c);
      expect(tf.memory().numTensors).toBe(before);
    }
    await engine.codes(c.head, c.shape, c.batch.features, c.batch.images * c.batch.cells);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('rejects inputs whose sizes do not match the shape', async () => {
    const c = randomStepCase({ seed: 10 });
    await expect(engine.step(c.head, c.centroids.subarray(1), c.shape, c.batch, c.config)).rejects.toThrow(ShapeError);
    const badPairs = { ...c.batch, pairB: Int32Array.from(c.batch.pairB, () => c.batch.images) };
    await expect(engine.step(c.head, c.centroids, c.shape, badPairs, c.config)).rejects.toThrow(ShapeError);
  });

  it('refuses work after dispose()', async () => {
    const other = await createTfjsEngine();
    await other.dispose();
    const c = randomStepCase({ seed: 12 });
    await expect(step(c)).resolves.toBeDefined(); // the shared engine is unaffected
    await expect(other.codes(c.head, c.shape, c.batch.features, 1)).rejects.toThrow(/dispose/);
  });
});
