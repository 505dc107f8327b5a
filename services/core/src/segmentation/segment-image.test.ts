import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { Backbone } from '../backbone/backbone.js';
import { featureConfigKey } from '../backbone/descriptor.js';
import { createEngine } from '../engines/registry.js';
import type { TrainingEngine } from '../engines/engine.js';
import { FussError } from '../errors.js';
import { initCentroids, initHead } from '../head/head-init.js';
import { IncompatibleModelError, type SegmentationModel } from '../io/model-file.js';
import { createRng } from '../math/rng.js';
import { makeTempDir } from '../test-support/fixtures.js';
import { buildTinyCnn } from '../test-support/tiny-backbones.js';
import { ClassLabelError, classColour, classTable, colourHex, parseColour, validateClassLabels } from './classes.js';
import { segmentImage, type MaskJson } from './segment-image.js';

let dir: Awaited<ReturnType<typeof makeTempDir>>;
let backbone: Backbone;
let engine: TrainingEngine;
let image: Buffer;

function modelFor(k: number, seed = 1): SegmentationModel {
  const rng = createRng(seed);
  const channels = 8;
  const codeDim = 4;
  return {
    head: initHead({ channels, codeDim }, rng),
    centroids: initCentroids(k, codeDim, rng),
    channels,
    codeDim,
    k,
    backbone: { id: 'tiny-cnn', sha256: backbone.descriptor.sha256, featureKey: featureConfigKey(backbone.descriptor) },
    round: 0,
    version: 0,
  };
}

beforeAll(async () => {
  dir = await makeTempDir();
  const path = join(dir.path, 'tiny-cnn.onnx');
  await writeFile(path, buildTinyCnn());
  backbone = await Backbone.open(path);
  engine = await createEngine('onnx', { threads: 1 });
  // 30 x 20: two colours split at a slanted edge, JPEG.
  const rgb = Buffer.alloc(30 * 20 * 3);
  for (let p = 0; p < 600; p++) {
    const right = p % 30 > 10 + Math.floor(p / 30) / 2;
    rgb.set(right ? [30, 60, 210] : [220, 70, 40], p * 3);
  }
  image = await sharp(rgb, { raw: { width: 30, height: 20, channels: 3 } }).jpeg({ quality: 95 }).toBuffer();
});
afterAll(async () => {
  await engine.dispose();
  await backbone.close();
  await dir.remove();
});

describe('segmentImage', () => {
  it('gives one mask of the image size in every format: PNG of ids, JSON with the class table, overlay', async () => {
    const model = modelFor(3);
    const png = await segmentImage({ backbone, engine, model, image });
    expect(png.contentType).toBe('image/png');
    const { data, info } = await sharp(png.body as Uint8Array).extractChannel(0).raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height]).toEqual([30, 20]);
    expect(Array.from(data)).toEqual(Array.from(png.mask));
    expect(Math.max(...data)).toBeLessThan(3);

    const classes = [{ id: 1, name: 'sky', colour: '#3366FF' }];
    const json = await segmentImage({ backbone, engine, model, image, format: 'json', classes });
    const body = json.body as MaskJson;
    expect([body.width, body.height, body.k, body.mask.length]).toEqual([30, 20, 3, 600]);
    expect(body.mask).toEqual(Array.from(png.mask));
    expect(body.classes.map((c) => [c.id, c.name, c.colour])).toEqual([[0, 'class 0', colourHex(classColour(0))], [1, 'sky', '#3366ff'], [2, 'class 2', colourHex(classColour(2))]]);
    expect(body.classes.reduce((s, c) => s + c.pixels, 0)).toBe(600);
    expect(body.classes.reduce((s, c) => s + c.share, 0)).toBeCloseTo(1, 9);

    const overlay = await segmentImage({ backbone, engine, model, image, format: 'overlay', classes });
    const meta = await sharp(overlay.body as Uint8Array).metadata();
    expect([meta.format, meta.width, meta.height, meta.channels]).toEqual(['png', 30, 20, 3]);
    // A pixel of class 1 is drawn in sky's colour, blended over the image.
    const pixels = await sharp(overlay.body as Uint8Array).raw().toBuffer();
    const decoded = await sharp(image).raw().toBuffer();
    const at = png.mask.indexOf(1);
    if (at >= 0) for (let c = 0; c < 3; c++) expect(pixels[at * 3 + c]).toBe(Math.round(0.45 * decoded[at * 3 + c] + 0.55 * parseColour('#3366ff')[c]));
  });

  it('draws a legend beside the overlay, names escaped, and refines with the CRF at the image size', async () => {
    const model = modelFor(3);
    const legend = await segmentImage({ backbone, engine, model, image, format: 'overlay', legend: true, classes: [{ id: 0, name: '<road & "kerb">' }] });
    const meta = await sharp(legend.body as Uint8Array).metadata();
    expect(meta.width).toBe(30 + 240);
    expect(meta.height).toBeGreaterThanOrEqual(20);
    const refined = await segmentImage({ backbone, engine, model, image, format: 'json', refine: 'crf' });
    expect((refined.body as MaskJson).mask).toHaveLength(600);
    expect(refined.mask.every((id) => id >= 0 && id < 3)).toBe(true);
  });

  it('refuses a model of another backbone, bad class labels and a non-image; more than 256 classes make a 16-bit PNG', async () => {
    const other = { ...modelFor(3), backbone: { id: 'x', sha256: 'e'.repeat(64), featureKey: 'k' } };
    await expect(segmentImage({ backbone, engine, model: other, image })).rejects.toThrow(IncompatibleModelError);
    await expect(segmentImage({ backbone, engine, model: modelFor(3), image, classes: [{ id: 3, name: 'out of range' }] })).rejects.toThrow(ClassLabelError);
    const big = modelFor(300);
    const wide = await segmentImage({ backbone, engine, model: big, image });
    const meta = await sharp(wide.body as Uint8Array).metadata();
    expect([meta.width, meta.height, meta.channels, meta.depth]).toEqual([30, 20, 1, 'ushort']);
    const { data } = await sharp(wide.body as Uint8Array).extractChannel(0).toColourspace('grey16').raw({ depth: 'ushort' }).toBuffer({ resolveWithObject: true });
    expect(Array.from(new Uint16Array(data.buffer, data.byteOffset, 600))).toEqual(Array.from(wide.mask));
    expect((await segmentImage({ backbone, engine, model: big, image, format: 'json' })).mask.length).toBe(600);
    await expect(segmentImage({ backbone, engine, model: modelFor(3), image: Buffer.from('not an image') })).rejects.toThrow(FussError);
  });

  it('computes a large image at its working size and brings every output back to the image size', async () => {
    const model = modelFor(3);
    const large = await sharp(image).resize(300, 200, { kernel: 'nearest' }).png().toBuffer();
    const png = await segmentImage({ backbone, engine, model, image: large, maxSide: 30 });
    expect([png.workWidth, png.workHeight, png.mask.length]).toEqual([30, 20, 600]);
    const { data, info } = await sharp(png.body as Uint8Array).extractChannel(0).raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height]).toEqual([300, 200]);
    // Nearest neighbours: pixel (x, y) of the output is cell (x / 10, y / 10) of the working mask.
    for (const [x, y] of [[0, 0], [155, 99], [299, 199]]) expect(data[y * 300 + x]).toBe(png.mask[Math.floor(y / 10) * 30 + Math.floor(x / 10)]);
    const json = (await segmentImage({ backbone, engine, model, image: large, maxSide: 30, format: 'json' })).body as MaskJson;
    expect(json.mask).toEqual(Array.from(data));
    for (const legend of [false, true]) {
      const overlay = await sharp((await segmentImage({ backbone, engine, model, image: large, maxSide: 30, format: 'overlay', legend })).body as Uint8Array).metadata();
      expect([overlay.width, overlay.height]).toEqual([legend ? 300 + 240 : 300, 200]);
    }
    await expect(segmentImage({ backbone, engine, model, image: large, maxPixels: 1000 })).rejects.toThrow(/pixel limit|exceeds/);
  });
});

describe('class labels', () => {
  it('accepts partial sets, sorts them by id and lower-cases colours', () => {
    expect(validateClassLabels([{ id: 2, name: 'road', colour: '#AABBCC' }, { id: 0, name: 'sky' }], 3)).toEqual([{ id: 0, name: 'sky' }, { id: 2, name: 'road', colour: '#aabbcc' }]);
    expect(classTable(2, [{ id: 1, name: 'car' }]).map((c) => c.name)).toEqual(['class 0', 'car']);
  });

  it('refuses ids outside 0..K-1, duplicate ids, too many classes, bad names and bad colours', () => {
    const cases: [unknown[], RegExp][] = [
      [[{ id: 3, name: 'x' }], /id 3 is not an integer in 0\.\.2/],
      [[{ id: -1, name: 'x' }], /id -1/],
      [[{ id: 1.5, name: 'x' }], /id 1.5/],
      [[{ id: 0, name: 'a' }, { id: 0, name: 'b' }], /id 0 is given more than once/],
      [[{ id: 0, name: 'a' }, { id: 1, name: 'b' }, { id: 2, name: 'c' }, { id: 2, name: 'd' }], /got 4 classes, but the model has only 3/],
      [[{ id: 0, name: '' }], /empty/],
      [[{ id: 0, name: '   ' }], /empty/],
      [[{ id: 0, name: 'x'.repeat(65) }], /longer than 64/],
      [[{ id: 0, name: 'nul\u0000byte' }], /control characters/],
      [[{ id: 0, name: 'tab\there' }], /control characters/],
      [[{ id: 0, name: 'x', colour: 'red' }], /not #rrggbb/],
      [[{ id: 0, name: 'x', colour: '#12345' }], /not #rrggbb/],
      [[{ id: 0, name: 7 }], /empty/],
    ];
    for (const [classes, message] of cases) expect(() => validateClassLabels(classes as never, 3), JSON.stringify(classes)).toThrow(message);
    expect(() => validateClassLabels([{ id: 0, name: 'x' }], 3)).not.toThrow();
    expect(() => parseColour('#zzzzzz')).toThrow(ClassLabelError);
  });
});
