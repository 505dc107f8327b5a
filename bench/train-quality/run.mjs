// Centralized training quality on CamVid: train the head and centroids on camvid/train (no labels),
// evaluate mIoU on camvid/val, next to the raw-feature k-means baseline on the same features and K.
// Usage: node bench/train-quality/run.mjs [--seeds 0,1,2] [--steps 1000] [--shifts I,P,N ...] [--engine onnx]
//        [--sampling sampled|full] [--lambda 0] [--no-baseline]

import { parseArgs } from 'node:util';
import {
  Backbone, DEFAULT_SHIFT_QUANTILES, TRAINING_DEFAULTS as T, calibrateShifts, createEngine, createRng, evaluateCentroids, fitKMeansCentroids,
  headCodeFunction, initCentroids, initHead, loadFeatureStore, openDataset, trainModel,
} from '@fuss/core';
import { median, printTable, sharedAssets, writeResults } from '../common.mjs';

const { values } = parseArgs({
  options: {
    seeds: { type: 'string', default: '0,1,2' },
    steps: { type: 'string', default: '1000' },
    shifts: { type: 'string', multiple: true },
    engine: { type: 'string', default: 'onnx' },
    sampling: { type: 'string', default: 'sampled' },
    lambda: { type: 'string', default: '0' },
    'head-lr': { type: 'string', default: String(T.headLr) },
    'no-centre': { type: 'boolean', default: false },
    'no-baseline': { type: 'boolean', default: false },
    k: { type: 'string', default: '11' },
  },
});
const seeds = values.seeds.split(',').map(Number);
const steps = Number(values.steps);
const K = Number(values.k);
// Each --shifts is "calibrate" (label-free quantiles, the default), "calibrate:QI,QP,QN" or fixed "I,P,N".
const shiftSets = (values.shifts ?? ['calibrate']).map((s) => {
  if (s.startsWith('calibrate')) {
    const q = s.includes(':') ? s.split(':')[1].split(',').map(Number) : undefined;
    return { calibrate: q ? { intra: q[0], inter: q[1], neg: q[2] } : DEFAULT_SHIFT_QUANTILES };
  }
  const [intra, inter, neg] = s.split(',').map(Number);
  return { intra, inter, neg };
});
const assets = sharedAssets();
const cacheDir = '.fuss/cache';
const backbone = await Backbone.open(assets.mobilenet);
const train = await openDataset(assets.train);
const val = await openDataset(assets.val);
const engine = await createEngine(values.engine, { log: (l) => console.error(l) });
const store = await loadFeatureStore(train.items, backbone, { cacheDir });
const rows = [];

if (!values['no-baseline']) {
  const runs = [];
  for (const seed of seeds) {
    const started = performance.now();
    const fitted = await fitKMeansCentroids(train, backbone, { k: K, seed, cacheDir });
    const m = await evaluateCentroids(val, backbone, fitted.centroids, K, { cacheDir });
    runs.push({ seed, mIoU: m.mIoU, pixelAccuracy: m.pixelAccuracy, seconds: (performance.now() - started) / 1000 });
    console.error(`k-means seed ${seed}: mIoU ${m.mIoU.toFixed(2)}`);
  }
  rows.push({ method: `k-means (raw features, K=${K})`, settings: {}, runs });
}

for (const shiftSet of shiftSets) {
  const runs = [];
  let shifts = shiftSet;
  for (const seed of seeds) {
    const rng = createRng(seed);
    if (shiftSet.calibrate) {
      const batchOptions = { queries: T.queries, negatives: T.negatives, sampling: values.sampling, samplePoints: T.samplePoints, weights: T.weights, shifts: T.stegoShifts, centre: !values['no-centre'], dropout: T.dropout };
      shifts = calibrateShifts(store, batchOptions, createRng(seed + 7919), shiftSet.calibrate).shifts;
      console.error(`calibrated shifts (quantiles ${JSON.stringify(shiftSet.calibrate)}): ${JSON.stringify(shifts)}`);
    }
    const shape = { channels: store.channels, codeDim: T.codeDim };
    const options = {
      steps, k: K, codeDim: T.codeDim, lambda: Number(values.lambda), headLr: Number(values['head-lr']), centroidLr: T.centroidLr, seed,
      queries: T.queries, negatives: T.negatives, sampling: values.sampling, samplePoints: T.samplePoints,
      weights: T.weights, shifts, centre: !values['no-centre'], dropout: T.dropout,
    };
    const started = performance.now();
    let last;
    const result = await trainModel(store, engine, { head: initHead(shape, rng), centroids: initCentroids(K, T.codeDim, rng) }, options, (e) => {
      last = e;
      if (e.step % 250 === 0) console.error(`  step ${e.step}: loss ${e.loss.toFixed(4)} entropy ${e.clusterEntropy.toFixed(2)}`);
    });
    const trainSeconds = (performance.now() - started) / 1000;
    const m = await evaluateCentroids(val, backbone, result.centroids, K, { cacheDir, codes: headCodeFunction(engine, result.head, store.channels, T.codeDim) });
    runs.push({ seed, mIoU: m.mIoU, pixelAccuracy: m.pixelAccuracy, trainSeconds, msPerStep: (trainSeconds * 1000) / steps, finalEntropy: last?.clusterEntropy });
    console.error(`trained shifts ${JSON.stringify(shifts)} seed ${seed}: mIoU ${m.mIoU.toFixed(2)} (${trainSeconds.toFixed(0)}s)`);
  }
  rows.push({ method: 'STEGO head + centroids', settings: { shifts: shiftSet.calibrate ? { calibrated: shiftSet.calibrate, lastSeed: shifts } : shifts, steps, sampling: values.sampling, lambda: Number(values.lambda), centre: !values['no-centre'], headLr: Number(values['head-lr']) }, runs });
}

const table = rows.map((r) => {
  const mious = r.runs.map((x) => x.mIoU);
  return {
    method: r.method,
    shifts: !r.settings.shifts ? '-' : r.settings.shifts.calibrated ? `calibrate q=${Object.values(r.settings.shifts.calibrated).join(',')}` : Object.values(r.settings.shifts).join(','),
    'mIoU median': median(mious).toFixed(2),
    'mIoU min..max': `${Math.min(...mious).toFixed(2)}..${Math.max(...mious).toFixed(2)}`,
    'pixel acc': median(r.runs.map((x) => x.pixelAccuracy)).toFixed(2),
    'train s': r.runs[0].trainSeconds ? median(r.runs.map((x) => x.trainSeconds)).toFixed(0) : '-',
  };
});
printTable(table);
console.log(`written ${writeResults('train-quality', { seeds, steps, k: K, engine: engine.name, backbone: backbone.descriptor.id, outputs: backbone.descriptor.outputs, rows })}`);
await engine.dispose();
await backbone.close();
