// Median milliseconds per training step for every engine side by side, on (a) the paper's ViT-B/8
// shape (8 queries + 8 neighbours, 28 x 28 patches, C = 768, D = 70, K = 27, 1 + 1 + 5 pairs per
// query) and (b) this project's MobileNetV2 shape on CamVid (45 x 60 cells, C = 768, K = 11), in
// sampled (11 x 11 cells) and full-grid modes, with achieved GFLOP/s against the measured fp32 peak.
// Usage: node bench/train-step/run.mjs [--engines onnx,tfjs] [--repeats 5] [--threads 2] [--device cpu|webgpu|cuda|auto]
// (--device applies to the onnx engine; bench/gpu/run.sh compares devices on a GPU machine).

import { parseArgs } from 'node:util';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createEngine, createRng, initCentroids, initHead, resolveDevice } from '@fuss/core';
import { median, printTable, writeResults } from '../common.mjs';
import { SHAPES, stepFlops, syntheticBatch } from './step-case.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const { values } = parseArgs({ options: { engines: { type: 'string', default: 'onnx,tfjs' }, repeats: { type: 'string', default: '5' }, threads: { type: 'string', default: '2' }, shapes: { type: 'string', default: 'vitb8,mobilenet' }, device: { type: 'string', default: 'cpu' } } });
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

const device = await resolveDevice(values.device, { log: (l) => console.error(l) });
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
        engine = await createEngine(name, { threads, device, log: (l) => console.error(l) });
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
      rows.push({ shape: shape.label, mode, cells: batch.cells, engine: name, device: engine.device, 'ms/step': ms.toFixed(1), GFLOP: (flops / 1e9).toFixed(2), 'GFLOP/s': gflops.toFixed(1), '% peak': ((100 * gflops) / peak).toFixed(1) });
      console.error(JSON.stringify(rows.at(-1)));
    }
  }
}
printTable(rows);
console.log(`written ${writeResults('train-step', { threads, repeats, device: device.name, peakGflops: peak, peakMethod: 'bench/peak/fma-peak.c: 12 independent AVX-512 FMA chains per core, OpenMP', rows })}`);
