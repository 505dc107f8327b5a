// Feature extraction speed on CamVid: images per second with 1 and 2 onnxruntime threads, a cold run
// (backbone runs and the cache is written) against a cached run (cache read only), and the median
// backbone forward time alone. Usage: node bench/features/run.mjs [--images N] [--split train|val]
// [--cache-root DIR] (where the cache is written: the system's temporary folder by default; /dev/shm
// takes the disk out of the cold figure)

import { parseArgs } from 'node:util';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Backbone, extractFeatures, openDataset } from '@fuss/core';
import { median, printTable, sharedAssets, writeResults } from '../common.mjs';

const { values } = parseArgs({ options: { images: { type: 'string' }, split: { type: 'string', default: 'train' }, 'cache-root': { type: 'string', default: tmpdir() } } });
const assets = sharedAssets();
const dataset = await openDataset(values.split === 'val' ? assets.val : assets.train);
const items = values.images ? dataset.items.slice(0, Number(values.images)) : dataset.items;

const rows = [];
for (const threads of [1, 2]) {
  const backbone = await Backbone.open(assets.mobilenet, { threads });
  const cacheDir = await mkdtemp(join(values['cache-root'], 'fuss-bench-cache-'));
  let shape = '';
  for (const mode of ['cold', 'cached']) {
    const started = performance.now();
    let computed = 0;
    for await (const r of extractFeatures(items, backbone, { cacheDir })) {
      if (r.source !== 'hit') computed++;
      shape = `${r.features.channels}x${r.features.height}x${r.features.width}`;
    }
    const seconds = (performance.now() - started) / 1000;
    if (mode === 'cached' && computed !== 0) throw new Error(`cached run recomputed ${computed} images`);
    rows.push({ threads, mode, images: items.length, seconds: seconds.toFixed(2), 'images/s': (items.length / seconds).toFixed(1), 'ms/image': ((seconds * 1000) / items.length).toFixed(1) });
  }
  // Forward pass alone (decode excluded: normalisation, backbone, assembly of the outputs), median over
  // 30 images after 3 warm-ups.
  const decoded = await Promise.all(items.slice(0, 33).map((item) => backbone.decode(item.imagePath)));
  const times = [];
  for (const [i, image] of decoded.entries()) {
    const t = performance.now();
    await backbone.extractDecoded(image);
    if (i >= 3) times.push(performance.now() - t);
  }
  rows.push({ threads, mode: 'forward only', images: times.length, seconds: '', 'images/s': (1000 / median(times)).toFixed(1), 'ms/image': median(times).toFixed(1) });
  console.error(`threads ${threads}: features ${shape}`);
  await backbone.close();
  await rm(cacheDir, { recursive: true, force: true });
}
printTable(rows);
const d = (await Backbone.open(assets.mobilenet)).descriptor;
console.log(`written ${writeResults('features', { backbone: d.id, outputs: d.outputs, split: values.split, cacheRoot: values['cache-root'], rows })}`);
