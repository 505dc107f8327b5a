// Median milliseconds per training step for every engine side by side, on (a) the paper's ViT-B/8
// shape (8 queries + 8 neighbours, 28 x 28 patches, C = 768, D = 70, K = 27, 1 + 1 + 5 pairs per
// query) and (b) this project's MobileNetV2 shape on CamVid (45 x 60 cells, C = 768, K = 11), in
// sampled (11 x 11 cells) and full-grid modes, with achieved GFLOP/s against the measured fp32 peak.
// Usage: node bench/train-step/run.mjs [--engines onnx,tfjs] [--repeats 5] [--threads 2]

import { parseArgs } from 'node:util';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createEngine, createRng, initCentroids, initHead, TRAINING_DEFAULTS as T } from '@fuss/core';
import { median, printTable, writeResults } from '../common.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const { values } = parseArgs({ options: { engines: { type: 'string', default: 'onnx,tfjs' }, repeats: { type: 'string', default: '5' }, threads: { type: 'string', default: '2' }, shapes: { type: 'string', default: 'vitb8,mobilenet' } } });
const repeats = Number(values.repeats);
const threads = Number(values.threads);

/** fp32 peak from the FMA loop in bench/peak (compiled here with gcc). */
function measurePeak() {
  const binary = join(here, 'out', 'fma-peak');
  if (!existsSync(binary)) {
    execFileSync('mkdir', ['-p', join(here, 'out')]);
    execFileSync('gcc', ['-O3', '-march=native', '-fopenmp', join(here, '..', 'peak', 'fma-peak.c'), '-o', binary]);
  }
  const runs = Array.from({ length: 5 }, () => JSON.parse(execFileSync(binary, { env: { ...process.env, OMP_NUM_THREADS: String(threads) } }).toString()).gflops);
  return Math.max(...runs);
}

const SHAPES = {
  vitb8: { label: '(a) ViT-B/8 paper shape', queries: 8, grid: 28 * 28, channels: 768, codeDim: 70, k: 27, full: true },
  mobilenet: {
    label: '(b) MobileNetV2 CamVid', queries: 8, grid: 45 * 60, channels: 768, codeDim: 70, k: 11, full: false,
    // 56 pairs x 2700^2 cells is 1.6 GB per correlation tensor and ~0.6 TFLOP per step.
    skipFull: 'the full 45x60 grid needs 1.6 GB per [pairs, N, N] correlation tensor',
  },
};

/** Matrix-product FLOPs of one step as the onnx engine computes it (engine.ts notation). */
function stepFlops({ images: I, cells: N, channels: C, codeDim: D, pairs: P }) {
  const rows = I * N;
  const head = 4 * rows * C * C + 10 * rows * C * D; // forward (X2W2, W3, W1) and backward (dW2, dW1, dW3, dH)
  const codeCorrelation = 6 * P * N * N * D; // C = Ua Ub^T forward, dUa and dUb backward
  const featureCorrelation = 2 * P * N * N * C;
  return head + codeCorrelation + featureCorrelation;
}

function syntheticBatch(shape, mode, rng) {
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

const peak = measurePeak();
console.error(`fp32 peak (FMA loop, ${threads} threads): ${peak.toFixed(1)} GFLOP/s`);
const rows = [];
for (const shapeName of values.shapes.split(',')) {
  const shape = SHAPES[shapeName];
  for (const mode of ['sampled', 'full']) {
    if (mode === 'full' && !shape.full) {
      console.error(`${shape.label} full: skipped (${shape.skipFull})`);
      continue;
    }
    const rng = createRng(1);
    const batch = syntheticBatch(shape, mode, rng);
    const headShape = { channels: shape.channels, codeDim: shape.codeDim };
    const head = initHead(headShape, rng);
    const centroids = initCentroids(shape.k, shape.codeDim, rng);
    const flops = stepFlops({ images: batch.images, cells: batch.cells, channels: shape.channels, codeDim: shape.codeDim, pairs: batch.pairA.length });
    for (const name of values.engines.split(',')) {
      let engine;
      try {
        engine = await createEngine(name, { threads, log: (l) => console.error(l) });
      } catch (err) {
        console.error(`${name}: unavailable (${err.message})`);
        continue;
      }
      const times = [];
      for (let i = 0; i < repeats + 2; i++) {
        const t = performance.now();
        await engine.step(head, centroids, headShape, batch, { k: shape.k, lambda: 0 });
        if (i >= 2) times.push(performance.now() - t);
      }
      await engine.dispose();
      const ms = median(times);
      const gflops = flops / (ms / 1000) / 1e9;
      rows.push({ shape: shape.label, mode, cells: batch.cells, engine: name, 'ms/step': ms.toFixed(1), GFLOP: (flops / 1e9).toFixed(2), 'GFLOP/s': gflops.toFixed(1), '% peak': ((100 * gflops) / peak).toFixed(1) });
      console.error(JSON.stringify(rows.at(-1)));
    }
  }
}
printTable(rows);
console.log(`written ${writeResults('train-step', { threads, repeats, peakGflops: peak, peakMethod: 'bench/peak/fma-peak.c: 12 independent AVX-512 FMA chains per core, OpenMP', rows })}`);
