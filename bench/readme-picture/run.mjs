// The README's picture: a CamVid val image segmented by a trained model through the same pipeline as
// POST /segment and `fuss segment --model` (dense-CRF refinement, overlay with a legend), with class
// names proposed from 10 labelled train images (spread over the set) as `fuss label` does and CamVid's usual colours.
// Usage: node bench/readme-picture/run.mjs --model models/camvid-seed0.safetensors [--image 0001TP_008550]
// Writes bench/readme-picture/segment-overlay.png (committed) and prints the names used.

import { readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { Backbone, createEngine, decodeModel, featureConfigKey, headCodeFunction, openDataset, proposeClassNames, segmentImage } from '@fuss/core';
import { sharedAssets } from '../common.mjs';

/** CamVid's customary label colours (SegNet tutorial palette). */
const CAMVID_COLOURS = {
  sky: '#808080', building: '#800000', pole: '#c0c080', road: '#804080', pavement: '#3c28de', tree: '#808000',
  sign_symbol: '#c08080', fence: '#404080', car: '#400080', pedestrian: '#404000', bicyclist: '#0080c0',
};

const { values } = parseArgs({ options: { model: { type: 'string' }, image: { type: 'string', default: '0016E5_07959' } } });
if (!values.model) {
  console.error('error: give --model FILE (e.g. from fuss train on camvid/train)');
  process.exit(2);
}
const assets = sharedAssets();
const backbone = await Backbone.open(assets.mobilenet);
const engine = await createEngine('onnx', {});
const model = decodeModel(await readFile(values.model), { backboneSha256: backbone.descriptor.sha256, featureKey: featureConfigKey(backbone.descriptor) });
const train = await openDataset(assets.train);
// 10 images spread over the three sequences of camvid/train.
const sample = { ...train, items: train.items.filter((_, i) => i % Math.floor(train.items.length / 10) === 0).slice(0, 10) };
const { proposals } = await proposeClassNames(sample, backbone, model.centroids, model.k, { cacheDir: '.fuss/cache', codes: headCodeFunction(engine, model.head, model.channels, model.codeDim) });
const classes = proposals.filter((p) => p.name && p.precision >= 0.1).map((p) => ({ id: p.id, name: p.name, colour: CAMVID_COLOURS[p.name] }));
console.log(JSON.stringify({ classes }));
const image = await readFile(join(assets.val, 'images', `${values.image}.jpg`));
const result = await segmentImage({ backbone, engine, model, image, format: 'overlay', legend: true, refine: 'crf', classes });
const out = join(dirname(fileURLToPath(import.meta.url)), 'segment-overlay.png');
await writeFile(out, await sharp(result.body).png({ palette: true, colours: 128, compressionLevel: 9 }).toBuffer());
console.log(`wrote ${out}`);
await engine.dispose();
await backbone.close();
