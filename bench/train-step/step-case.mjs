// The training-step benchmark's shapes and synthetic batches, shared by bench/train-step and bench/gpu:
// the paper's ViT-B/8 shape (8 queries + 8 neighbours, 28 x 28 patches, C = 768, D = 70, K = 27,
// 1 + 1 + 5 pairs per query) and this project's MobileNetV2 shape on CamVid (45 x 60 cells, K = 11).

import { TRAINING_DEFAULTS as T } from '@fuss/core';

export const SHAPES = {
  vitb8: { label: '(a) ViT-B/8 paper shape', queries: 8, grid: 28 * 28, channels: 768, codeDim: 70, k: 27, full: true },
  mobilenet: {
    label: '(b) MobileNetV2 CamVid', queries: 8, grid: 45 * 60, channels: 768, codeDim: 70, k: 11, full: false,
    // 56 pairs x 2700^2 cells is 1.6 GB per correlation tensor and ~0.6 TFLOP per step.
    skipFull: 'the full 45x60 grid needs 1.6 GB per [pairs, N, N] correlation tensor',
  },
};

/** Matrix-product FLOPs of one step as the onnx engine computes it (engine.ts notation). */
export function stepFlops({ images: I, cells: N, channels: C, codeDim: D, pairs: P }) {
  const rows = I * N;
  const head = 4 * rows * C * C + 10 * rows * C * D; // forward (X2W2, W3, W1) and backward (dW2, dW1, dW3, dH)
  const codeCorrelation = 6 * P * N * N * D; // C = Ua Ub^T forward, dUa and dUb backward
  const featureCorrelation = 2 * P * N * N * C;
  return head + codeCorrelation + featureCorrelation;
}

export function syntheticBatch(shape, mode, rng) {
  const Q = shape.queries;
  const I = 2 * Q;
  const N = mode === 'sampled' ? T.samplePoints * T.samplePoints : shape.grid;
  const C = shape.channels;
  const features = Float32Array.from({ length: I * N * C }, () => Math.max(0, rng.normal()));
  const featuresUnit = new Float32Array(features.length);
  for (let r = 0; r < I * N; r++) {
    let norm = 0;
    for (let c = 0; c < C; c++) norm += (features[r * C + c] - 0.4) ** 2;
    for (let c = 0; c < C; c++) featuresUnit[r * C + c] = (features[r * C + c] - 0.4) / Math.sqrt(norm);
  }
  const pairA = [], pairB = [], pairWeight = [], pairShift = [];
  for (let q = 0; q < Q; q++) {
    pairA.push(q, q); pairB.push(q, Q + q); pairWeight.push(1 / Q, 0.577 / Q); pairShift.push(0.458, 0.175);
    for (let r = 1; r <= T.negatives; r++) { pairA.push(q); pairB.push((q + r) % Q); pairWeight.push(0.906 / (Q * T.negatives)); pairShift.push(0.314); }
  }
  const mask = () => Float32Array.from({ length: I * C }, () => (rng.next() < 0.1 ? 0 : 1 / 0.9));
  return {
    images: I, cells: N, channels: C, queries: Q, features, featuresUnit, dropMask1: mask(), dropMask2: mask(),
    pairA: Int32Array.from(pairA), pairB: Int32Array.from(pairB), pairWeight: Float32Array.from(pairWeight), pairShift: Float32Array.from(pairShift),
  };
}
