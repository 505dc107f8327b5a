// The onnx engine's hand-derived backward pass against central finite differences of the float64
// reference loss (reference-loss.ts, via provider-parity.ts), and its forward against the same reference.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOnnxEngine } from './onnx-engine.js';
import { referenceLoss } from '../reference-loss.js';
import { randomStepCase } from '../test-support/random-step-case.js';
import { measureParity, PARITY_RTOL } from '../test-support/provider-parity.js';
import type { TrainingEngine } from '../engine.js';

let engine: TrainingEngine;
beforeAll(async () => {
  engine = await createOnnxEngine({ threads: 1 });
});
afterAll(() => engine.dispose());

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
      const parity = await measureParity(engine, label, { seed: 11, ...options });
      expect(parity.checked).toBeGreaterThan(50);
      for (const [name, error] of Object.entries(parity.gradErrors)) expect(error, name).toBeLessThan(PARITY_RTOL);
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
