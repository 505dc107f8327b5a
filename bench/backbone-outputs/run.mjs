// Which MobileNetV2 outputs make the best features for unsupervised segmentation? For each candidate
// set of outputs, fit raw-feature k-means (K = 11) on CamVid train and evaluate mIoU on CamVid val.
// Usage: node bench/backbone-outputs/run.mjs [--seeds 0,1,2]

import { parseArgs } from 'node:util';
import { Backbone, evaluateCentroids, fitKMeansCentroids, openDataset } from '@fuss/core';
import { median, printTable, sharedAssets, writeResults } from '../common.mjs';

const { values } = parseArgs({ options: { seeds: { type: 'string', default: '0' }, only: { type: 'string' } } });
const seeds = values.seeds.split(',').map(Number);
const assets = sharedAssets();
const cacheDir = '.fuss/cache';

const candidates = [
  { outputs: ['feat_525'], outputNorm: 'none' },
  { outputs: ['feat_528'], outputNorm: 'none' },
  { outputs: ['feat_588'], outputNorm: 'none' },
  { outputs: ['feat_591'], outputNorm: 'none' },
  { outputs: ['feat_627'], outputNorm: 'none' },
  { outputs: ['feat_528', 'feat_591'], outputNorm: 'none' },
  { outputs: ['feat_528', 'feat_591'], outputNorm: 'l2' },
  { outputs: ['feat_528', 'feat_591', 'feat_627'], outputNorm: 'l2' },
  { outputs: ['feat_591', 'feat_627'], outputNorm: 'l2' },
].filter((c) => !values.only || c.outputs.join('+') === values.only);

const train = await openDataset(assets.train);
const val = await openDataset(assets.val);
const rows = [];
for (const candidate of candidates) {
  const backbone = await Backbone.open(assets.mobilenet, { overrides: candidate });
  const runs = [];
  for (const seed of seeds) {
    const started = performance.now();
    const fitted = await fitKMeansCentroids(train, backbone, { k: 11, seed, cacheDir });
    const metrics = await evaluateCentroids(val, backbone, fitted.centroids, 11, { cacheDir });
    runs.push({ seed, mIoU: metrics.mIoU, pixelAccuracy: metrics.pixelAccuracy, seconds: (performance.now() - started) / 1000, channels: fitted.channels });
  }
  await backbone.close();
  const mious = runs.map((r) => r.mIoU);
  const row = {
    outputs: candidate.outputs.join('+'),
    norm: candidate.outputNorm,
    channels: runs[0].channels,
    'mIoU (median)': median(mious).toFixed(2),
    'mIoU min..max': `${Math.min(...mious).toFixed(2)}..${Math.max(...mious).toFixed(2)}`,
    'pixel acc': median(runs.map((r) => r.pixelAccuracy)).toFixed(2),
    'seconds/run': median(runs.map((r) => r.seconds)).toFixed(1),
  };
  rows.push({ ...row, runs });
  console.error(JSON.stringify(row));
}
printTable(rows.map(({ runs: _runs, ...row }) => row));
console.log(`written ${writeResults('backbone-outputs', { seeds, k: 11, fit: 'camvid/train', eval: 'camvid/val', rows })}`);
