// Augmented views: parsing, crop boxes and pixels on hand-made images, and views through the backbone,
// the feature cache (one entry per view) and the feature store (views are never each other's neighbours).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Backbone } from '../backbone/backbone.js';
import { openDataset } from '../dataset/dataset.js';
import { makeTempDir, makeTinyDataset, writeTinyBackbones } from '../test-support/fixtures.js';
import { loadFeatureStore } from '../training/feature-store.js';
import { extractFeatures } from './extract.js';
import { applyView, cropBox, formatAugmentation, IDENTITY_VIEW, parseAugmentation, viewCacheKey, AUGMENTATION_PATTERN } from './views.js';

describe('augmentation views', () => {
  it('parses none, flip, crops and both, the image itself first', () => {
    expect(parseAugmentation('none')).toEqual([IDENTITY_VIEW]);
    expect(parseAugmentation('flip').map((v) => v.id)).toEqual(['identity', 'flip']);
    expect(parseAugmentation('crops:0.8').map((v) => v.id)).toEqual(['identity', 'crop0.8-tl', 'crop0.8-tr', 'crop0.8-bl', 'crop0.8-br', 'crop0.8-c']);
    const both = parseAugmentation('flip,crops:0.5');
    expect(both).toHaveLength(12);
    expect(both.filter((v) => v.flip)).toHaveLength(6);
    expect(both.at(-1)).toEqual({ id: 'crop0.5-c-flip', flip: true, crop: { fraction: 0.5, anchor: 'c' } });
    for (const text of ['none', 'flip', 'crops:0.8', 'flip,crops:0.8']) {
      expect(formatAugmentation(text)).toBe(text);
      expect(new RegExp(AUGMENTATION_PATTERN).test(text), text).toBe(true);
    }
    expect(formatAugmentation('crops:0.8,flip')).toBe('flip,crops:0.8');
    for (const bad of ['mirror', 'crops:1', 'crops:0', 'crops:x', 'flip,flip', '']) expect(() => parseAugmentation(bad), bad).toThrow(/augmentation/);
  });

  it('crops at the corners and the centre, and mirrors after the crop', () => {
    const [, tl, tr, bl, br, c] = parseAugmentation('crops:0.5');
    expect([tl, tr, bl, br, c].map((v) => cropBox(v, 10, 6))).toEqual([
      { left: 0, top: 0, width: 5, height: 3 },
      { left: 5, top: 0, width: 5, height: 3 },
      { left: 0, top: 3, width: 5, height: 3 },
      { left: 5, top: 3, width: 5, height: 3 },
      { left: 2, top: 1, width: 5, height: 3 },
    ]);
    // A 3x2 image whose red channel is the pixel index.
    const image = { width: 3, height: 2, data: Uint8Array.from({ length: 18 }, (_, i) => (i % 3 === 0 ? i / 3 : 0)) };
    const red = (im: { data: Uint8Array }) => Array.from(im.data).filter((_, i) => i % 3 === 0);
    expect(red(applyView(image, { id: 'flip', flip: true }))).toEqual([2, 1, 0, 5, 4, 3]);
    const cropped = applyView(image, { id: 'x', flip: true, crop: { fraction: 0.67, anchor: 'tr' } });
    expect([cropped.width, cropped.height]).toEqual([2, 1]);
    expect(red(cropped)).toEqual([2, 1]);
    expect(viewCacheKey('ab12', IDENTITY_VIEW)).toBe('ab12');
    expect(viewCacheKey('ab12', tl)).toBe('ab12-crop0.5-tl');
  });
});

describe('views through the backbone, the cache and the feature store', () => {
  let dir: { path: string; remove: () => Promise<void> };
  let backbone: Backbone;
  beforeAll(async () => {
    dir = await makeTempDir();
    await makeTinyDataset(join(dir.path, 'data'), { images: 4, width: 32, height: 24 });
    backbone = await Backbone.open((await writeTinyBackbones(join(dir.path, 'models'))).cnn);
  });
  afterAll(async () => {
    await backbone.close();
    await dir.remove();
  });

  it('caches each view under its own key and reads it back', async () => {
    const dataset = await openDataset(join(dir.path, 'data'));
    const cacheDir = join(dir.path, 'cache');
    const [identity, flip] = parseAugmentation('flip');
    const run = async (view = identity) => {
      const out = [];
      for await (const r of extractFeatures(dataset.items, backbone, { cacheDir, view })) out.push(r);
      return out;
    };
    const plain = await run();
    const mirrored = await run(flip);
    expect(mirrored.map((r) => r.source)).toEqual(['computed', 'computed', 'computed', 'computed']);
    expect((await run(flip)).map((r) => r.source)).toEqual(['hit', 'hit', 'hit', 'hit']);
    expect(mirrored[0].features.data).not.toEqual(plain[0].features.data);
    const configDir = join(cacheDir, (await readdir(cacheDir))[0]);
    let entries = 0;
    for (const shard of await readdir(configDir)) entries += (await readdir(join(configDir, shard))).length;
    expect(entries).toBe(8);
    // A crop is sized for the backbone like any image: a smaller grid.
    const [, corner] = parseAugmentation('crops:0.5');
    const crops = [];
    for await (const r of extractFeatures(dataset.items, backbone, { view: corner })) crops.push(r.features);
    expect([crops[0].height, crops[0].width]).toEqual([plain[0].features.height / 2, plain[0].features.width / 2]);
  });

  it('stores every view, counts source images, and never pairs an image with its own view', async () => {
    const dataset = await openDataset(join(dir.path, 'data'));
    const store = await loadFeatureStore(dataset.items, backbone, { views: parseAugmentation('flip'), neighbourCount: 7 });
    expect(store.images.map((im) => im.id)).toEqual([...dataset.items.map((i) => i.id), ...dataset.items.map((i) => `${i.id}@flip`)]);
    expect(store.sourceImages).toBe(4);
    expect(store.images.map((im) => im.source)).toEqual([0, 1, 2, 3, 0, 1, 2, 3]);
    store.neighbours.forEach((list, i) => {
      expect(list).toHaveLength(6);
      for (const j of list) expect(store.images[j].source).not.toBe(store.images[i].source);
    });
    const plain = await loadFeatureStore(dataset.items, backbone);
    expect(plain.images.map((im) => im.id)).toEqual(dataset.items.map((i) => i.id));
    expect(plain.sourceImages).toBe(4);
  });
});
