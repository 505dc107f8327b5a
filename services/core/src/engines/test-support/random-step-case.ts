// Random but valid engine inputs for gradient and parity tests (seeded).

import { createRng } from '../../math/rng.js';
import type { HeadParams, HeadShape, RegularizerScope, StepBatch, StepConfig } from '../engine.js';

export interface StepCase {
  head: HeadParams;
  centroids: Float32Array;
  shape: HeadShape;
  batch: StepBatch;
  config: StepConfig;
}

export interface StepCaseOptions {
  seed?: number;
  images?: number;
  queries?: number;
  cells?: number;
  channels?: number;
  codeDim?: number;
  k?: number;
  lambda?: number;
  moon?: RegularizerScope;
  prox?: RegularizerScope;
  dropout?: boolean;
}

export function randomStepCase(options: StepCaseOptions = {}): StepCase {
  const rng = createRng(options.seed ?? 1);
  const I = options.images ?? 4;
  const Q = options.queries ?? 2;
  const N = options.cells ?? 5;
  const C = options.channels ?? 6;
  const D = options.codeDim ?? 3;
  const K = options.k ?? 3;
  const normal = (n: number, scale = 1) => Float32Array.from({ length: n }, () => rng.normal() * scale);
  const head = (): HeadParams => ({
    l1Weight: normal(D * C, 0.5),
    l1Bias: normal(D, 0.1),
    l2Weight: normal(C * C, 0.5),
    l2Bias: normal(C, 0.1),
    l3Weight: normal(D * C, 0.5),
    l3Bias: normal(D, 0.1),
  });
  // ReLU-like features (non-negative) as a CNN backbone gives.
  const features = Float32Array.from({ length: I * N * C }, () => Math.max(0, rng.normal() + 0.3));
  const featuresUnit = new Float32Array(features.length);
  for (let r = 0; r < I * N; r++) {
    let norm = 0;
    for (let c = 0; c < C; c++) norm += (features[r * C + c] - 0.5) ** 2;
    for (let c = 0; c < C; c++) featuresUnit[r * C + c] = (features[r * C + c] - 0.5) / Math.sqrt(norm);
  }
  const mask = () => Float32Array.from({ length: I * C }, () => (options.dropout !== false && rng.next() < 0.2 ? 0 : 1 / 0.8));
  const pairA: number[] = [];
  const pairB: number[] = [];
  for (let q = 0; q < Q; q++) {
    pairA.push(q, q, q);
    pairB.push(q, Q + (q % (I - Q)), (q + 1) % Q);
  }
  const P = pairA.length;
  const batch: StepBatch = {
    images: I,
    cells: N,
    channels: C,
    queries: Q,
    features,
    featuresUnit,
    dropMask1: mask(),
    dropMask2: mask(),
    pairA: Int32Array.from(pairA),
    pairB: Int32Array.from(pairB),
    pairWeight: Float32Array.from({ length: P }, () => 0.2 + rng.next()),
    pairShift: Float32Array.from({ length: P }, () => rng.next() * 0.3 - 0.1),
  };
  const config: StepConfig = { k: K, lambda: options.lambda ?? 0 };
  if (options.moon) config.moon = { globalHead: head(), previousHead: head(), tau: 0.5, weight: 1, scope: options.moon };
  if (options.prox) config.prox = { globalHead: head(), mu: 0.05, scope: options.prox };
  return { head: head(), centroids: normal(K * D), shape: { channels: C, codeDim: D }, batch, config };
}
