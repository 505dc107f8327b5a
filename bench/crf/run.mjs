// Dense-CRF refinement on CamVid val: mIoU of trained models without and with the CRF, and the time
// the refinement takes per 480x360 image (median wall and CPU time; the CRF runs on one thread), by
// CRF working size. The unrefined mask's own
// time (nearest centroid, bilinear upsampling to the image) is measured in the same run as an anchor.
// Usage: node bench/crf/run.mjs --models models/a.safetensors,models/b.safetensors,... [--working-pixels 12000,50000]
//        [--images N] [--iterations 10]
// Models: `fuss train --data ../shared/data/camvid/train --backbone ../shared/models/mobilenetv2-int8-features.onnx
//          --k 11 --steps 1000 --seed S --out models/camvid-seedS.safetensors` for S = 0, 1, 2.

import { readFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import {
  Backbone, accumulateConfusion, assignPixels, cosineScores, createConfusion, createEngine, decodeModel, decodeRgb, extractFeatures,
  featureConfigKey, headCodeFunction, normalizeRows, openDataset, readLabelMap, refineWithCrf, unsupervisedMetrics, CRF_DEFAULTS,
} from '@fuss/core';
import { median, printTable, sharedAssets, writeResults } from '../common.mjs';

const { values } = parseArgs({
  options: {
    models: { type: 'string' },
    'working-pixels': { type: 'string', default: String(CRF_DEFAULTS.workingPixels) },
    images: { type: 'string' },
    iterations: { type: 'string', default: String(CRF_DEFAULTS.iterations) },
  },
});
if (!values.models) {
  console.error('error: give --models FILE[,FILE...] (trained with fuss train; see the header of this script)');
  process.exit(2);
}
const assets = sharedAssets();
const modelPaths = values.models.split(',');
const sizes = values['working-pixels'].split(',').map(Number);
const iterations = Number(values.iterations);
const backbone = await Backbone.open(assets.mobilenet);
const engine = await createEngine('onnx', {});
const val = await openDataset(assets.val);
const items = values.images ? val.items.slice(0, Number(values.images)) : val.items;
const classes = val.info.classes;
const loadBefore = loadavg();
const rows = [];
const runs = [];

for (const path of modelPaths) {
  const model = decodeModel(await readFile(path), { backboneSha256: backbone.descriptor.sha256, featureKey: featureConfigKey(backbone.descriptor) }, path);
  const { k } = model;
  const codesOf = headCodeFunction(engine, model.head, model.channels, model.codeDim);
  const unit = normalizeRows(model.centroids, k, model.codeDim);
  const confusion = { none: createConfusion(k, classes.length), ...Object.fromEntries(sizes.map((s) => [s, createConfusion(k, classes.length)])) };
  const ms = { none: [], ...Object.fromEntries(sizes.map((s) => [s, []])) };
  const cpuMs = Object.fromEntries(sizes.map((s) => [s, []]));
  for await (const { item, features } of extractFeatures(items, backbone, { cacheDir: '.fuss/cache' })) {
    const label = await readLabelMap(item, val.info);
    const image = await decodeRgb(item.imagePath);
    const codes = await codesOf(features);
    let started = performance.now();
    const plain = assignPixels(codes, unit, k, label.width, label.height);
    ms.none.push(performance.now() - started);
    accumulateConfusion(confusion.none, k, classes.length, plain, label.data, val.info.ignoreIndex);
    const scores = cosineScores(codes, unit, k);
    for (const size of sizes) {
      started = performance.now();
      const cpu = process.cpuUsage();
      const refined = refineWithCrf(image, scores, k, codes.height, codes.width, { workingPixels: size, iterations });
      ms[size].push(performance.now() - started);
      const used = process.cpuUsage(cpu);
      cpuMs[size].push((used.user + used.system) / 1000);
      accumulateConfusion(confusion[size], k, classes.length, refined, label.data, val.info.ignoreIndex);
    }
  }
  const score = (key) => unsupervisedMetrics(confusion[key], k, classes.length, classes);
  const plain = score('none');
  const run = { model: path, images: items.length, unrefined: { mIoU: plain.mIoU, pixelAccuracy: plain.pixelAccuracy, msPerImage: median(ms.none) }, crf: [] };
  rows.push({ model: path, refine: 'none', 'working size': '-', mIoU: plain.mIoU.toFixed(2), gain: '-', 'pixel acc': plain.pixelAccuracy.toFixed(2), 'ms/image': median(ms.none).toFixed(1), 'cpu ms/image': '-' });
  for (const size of sizes) {
    const m = score(size);
    const factor = Math.max(1, Math.ceil(Math.sqrt((480 * 360) / size)));
    run.crf.push({ workingPixels: size, factor, mIoU: m.mIoU, gain: m.mIoU - plain.mIoU, pixelAccuracy: m.pixelAccuracy, msPerImage: median(ms[size]), cpuMsPerImage: median(cpuMs[size]), msAll: ms[size] });
    rows.push({ model: path, refine: 'crf', 'working size': `${Math.ceil(480 / factor)}x${Math.ceil(360 / factor)} (1/${factor})`, mIoU: m.mIoU.toFixed(2), gain: (m.mIoU - plain.mIoU).toFixed(2), 'pixel acc': m.pixelAccuracy.toFixed(2), 'ms/image': median(ms[size]).toFixed(1), 'cpu ms/image': median(cpuMs[size]).toFixed(1) });
  }
  runs.push(run);
  console.error(`${path}: done`);
}

printTable(rows);
const load = { before: loadBefore, after: loadavg() };
console.log(`load average (1, 5, 15 min) before ${load.before.map((v) => v.toFixed(2)).join(' ')}, after ${load.after.map((v) => v.toFixed(2)).join(' ')}`);
console.log(`results: ${writeResults('crf', { iterations, sizes, runs, load })}`);
await engine.dispose();
await backbone.close();
