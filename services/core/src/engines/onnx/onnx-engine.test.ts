// The onnx engine's hand-derived backward pass against central finite differences of the float64
// reference loss (reference-loss.ts), and its forward against the same reference.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOnnxEngine } from './onnx-engine.js';
import { referenceLoss } from '../reference-loss.js';
import { randomStepCase, type StepCase } from '../test-support/random-step-case.js';
import { HEAD_PARAM_NAMES, type TrainingEngine, type HeadParams } from '../engine.js';

let engine: TrainingEngine;
beforeAll(async () => {
  engine = await createOnnxEngine({ threads: 1 });
});
afterAll(() => engine.dispose());

/** Relative error of a gradient vector against finite differences, over components that are not tiny. */
function finiteDifferenceCheck(c: StepCase, analytic: { head: HeadParams; centroids: Float32Array }, samplesPerTensor = 6) {
  // Codes enter the centroid loss detached: the head's gradient excludes that term, and the centroids
  // appear in no other term. Differentiate accordingly.
  const headLoss = () => {
    const r = referenceLoss(c.head, c.centroids, c.shape, c.batch, c.config);
    return r.loss - r.parts.cluster;
  };
  const centroidLoss = () => referenceLoss(c.head, c.centroids, c.shape, c.batch, c.config).parts.cluster;
  const failures: string[] = [];
  let checked = 0;
  const targets: [string, Float32Array, Float32Array][] = [
    ...HEAD_PARAM_NAMES.map((n) => [n, c.head[n], analytic.head[n]] as [string, Float32Array, Float32Array]),
    ['centroids', c.centroids, analytic.centroids],
  ];
  for (const [name, values, grad] of targets) {
    const loss = name === 'centroids' ? centroidLoss : headLoss;
    for (let s = 0; s < samplesPerTensor; s++) {
      const i = Math.floor((s * values.length) / samplesPerTensor);
      const original = values[i];
      const h = 1e-3 * Math.max(1, Math.abs(original));
      values[i] = original + h;
      const up = loss();
      values[i] = original - h;
      const down = loss();
      values[i] = original;
      const numeric = (up - down) / (2 * h);
      const scale = Math.max(Math.abs(numeric), Math.abs(grad[i]));
      if (scale < 1e-6) continue; // both ~0: nothing to compare
      checked++;
      const relative = Math.abs(numeric - grad[i]) / scale;
      if (relative > 2e-2) failures.push(`${name}[${i}]: analytic ${grad[i]}, numeric ${numeric}`);
    }
  }
  return { failures, checked };
}

describe('onnx engine', () => {
  const variants: { label: string; options: Parameters<typeof randomStepCase>[0] }[] = [
    { label: 'correspondence + centroid loss', options: {} },
    { label: 'with lambda', options: { lambda: 0.5 } },
    { label: 'MOON on the nonlinear branch + FedProx', options: { moon: 'nonlinear', prox: 'nonlinear' } },
    { label: 'MOON and FedProx on the whole head', options: { moon: 'head', prox: 'head' } },
  ];

  for (const { label, options } of variants) {
    it(`matches finite differences of the reference loss: ${label}`, async () => {
      const c = randomStepCase({ seed: 11, ...options });
      const result = await engine.step(c.head, c.centroids, c.shape, c.batch, c.config);
      const reference = referenceLoss(c.head, c.centroids, c.shape, c.batch, c.config);
      expect(result.loss).toBeCloseTo(reference.loss, 4);
      for (const part of ['corr', 'cluster', 'moon', 'prox'] as const) expect(result.parts[part]).toBeCloseTo(reference.parts[part], 4);
      const { failures, checked } = finiteDifferenceCheck(c, { head: result.headGrad, centroids: result.centroidGrad });
      expect(checked).toBeGreaterThan(20);
      expect(failures).toEqual([]);
    });
  }

  it('agrees with the reference in sampled-size and full-size batches', async () => {
    for (const cells of [121, 64]) {
      const c = randomStepCase({ seed: 5, cells, channels: 12, codeDim: 5, images: 6, queries: 3 });
      const result = await engine.step(c.head, c.centroids, c.shape, c.batch, c.config);
      const reference = referenceLoss(c.head, c.centroids, c.shape, c.batch, c.config);
      expect(Math.abs(result.loss - reference.loss)).toBeLessThan(1e-4 * Math.max(1, Math.abs(reference.loss)));
      expect(result.clusterCounts.reduce((a, b) => a + b, 0)).toBe(3 * cells);
    }
  });

  it('computes codes equal to the step graph forward (no dropout)', async () => {
    const c = randomStepCase({ seed: 3 });
    const rows = c.batch.images * c.batch.cells;
    const codes = await engine.codes(c.head, c.shape, c.batch.features, rows);
    expect(codes.length).toBe(rows * c.shape.codeDim);
    // Row 0 by hand: S = W1 x + b1 + W3 relu(W2 x + b2) + b3
    const { channels: C, codeDim: D } = c.shape;
    const x = c.batch.features.subarray(0, C);
    const hidden = Array.from({ length: C }, (_, o) => Math.max(0, c.head.l2Bias[o] + x.reduce((s, v, i) => s + v * c.head.l2Weight[o * C + i], 0)));
    for (let d = 0; d < D; d++) {
      let s = c.head.l1Bias[d] + c.head.l3Bias[d];
      for (let i = 0; i < C; i++) s += c.head.l1Weight[d * C + i] * x[i] + c.head.l3Weight[d * C + i] * hidden[i];
      expect(codes[d]).toBeCloseTo(s, 4);
    }
  });
});
