import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readFile, writeFile, truncate, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { FeatureCache, imageContentHash } from './feature-cache.js';
import { extractFeatureCells, extractFeatures } from '../features/extract.js';
import { pickRandomCells, sampleFeatureCells, sampleUnitCells } from '../evaluation/kmeans-baseline.js';
import { createRng } from '../math/rng.js';
import { float32ToFloat16 } from './float16.js';
import { Backbone } from '../backbone/backbone.js';
import { openDataset } from '../dataset/dataset.js';
import { makeTempDir, makeTinyDataset, writeTinyBackbones } from '../test-support/fixtures.js';
import { expectClose } from '../test-support/expect-close.js';

let dir: { path: string; remove: () => Promise<void> };
beforeEach(async () => {
  dir = await makeTempDir();
});
afterEach(() => dir.remove());

const map = { channels: 3, height: 2, width: 2, data: new Float32Array([0, 1, -2, 0.5, 3.25, -0.125, 7, 8, 9, 10, 11, 1e-3]) };

describe('FeatureCache', () => {
  it('round-trips a feature map through float16', async () => {
    const cache = new FeatureCache(dir.path, 'cfg');
    const key = imageContentHash(new Uint8Array([1, 2, 3]));
    expect(await cache.get(key)).toEqual({ status: 'miss' });
    await cache.put(key, map);
    const hit = await cache.get(key);
    expect(hit.status).toBe('hit');
    if (hit.status !== 'hit') return;
    expect([hit.features.channels, hit.features.height, hit.features.width]).toEqual([3, 2, 2]);
    // float16 keeps 11 significant bits: relative error <= 2^-11.
    expectClose(hit.features.data, map.data, { atol: 1e-6, rtol: 2 ** -11 });
  });

  it('writes the data 4-byte aligned, and still reads entries whose data is not aligned', async () => {
    const cache = new FeatureCache(dir.path, 'cfg');
    const key = imageContentHash(new Uint8Array([4, 5]));
    await cache.put(key, map);
    const bytes = await readFile(cache.pathFor(key));
    const headerLength = bytes.readUInt32LE(8);
    expect((12 + headerLength) % 4).toBe(0);
    // The layout before padding: the same header without its trailing spaces (odd length here).
    const trimmed = bytes.toString('utf8', 12, 12 + headerLength).trimEnd();
    const json = trimmed + ((12 + trimmed.length) % 2 === 0 ? ' ' : '');
    const unpadded = Buffer.concat([bytes.subarray(0, 8), Buffer.alloc(4), Buffer.from(json), bytes.subarray(12 + headerLength)]);
    unpadded.writeUInt32LE(json.length, 8);
    expect((12 + json.length) % 2).toBe(1);
    await writeFile(cache.pathFor(key), unpadded);
    const hit = await cache.get(key);
    expect(hit.status).toBe('hit');
    if (hit.status === 'hit') expect([...float32ToFloat16(hit.features.data)]).toEqual([...float32ToFloat16(map.data)]);
  });

  it('keeps backbones apart: another config key misses', async () => {
    const key = imageContentHash(new Uint8Array([4]));
    await new FeatureCache(dir.path, 'backbone-a').put(key, map);
    expect((await new FeatureCache(dir.path, 'backbone-b').get(key)).status).toBe('miss');
  });

  it('reports truncated, bit-flipped and foreign entries as corrupt', async () => {
    const cache = new FeatureCache(dir.path, 'cfg');
    const key = imageContentHash(new Uint8Array([5]));
    await cache.put(key, map);
    const path = cache.pathFor(key);
    const good = await readFile(path);

    await truncate(path, good.length - 3);
    expect(await cache.get(key)).toMatchObject({ status: 'corrupt', reason: expect.stringMatching(/bytes/) });

    const flipped = Buffer.from(good);
    flipped[flipped.length - 1] ^= 0x40;
    await writeFile(path, flipped);
    expect(await cache.get(key)).toMatchObject({ status: 'corrupt', reason: expect.stringMatching(/checksum/) });

    await writeFile(path, good.subarray(0, 10));
    expect((await cache.get(key)).status).toBe('corrupt');

    await writeFile(path, 'garbage that is long enough to have a header');
    expect((await cache.get(key)).status).toBe('corrupt');
  });
});

describe('extractFeatures with the cache', () => {
  it('runs the backbone once per image, then reads the cache; a damaged entry is recomputed', async () => {
    const data = join(dir.path, 'data');
    await makeTinyDataset(data, { images: 4 });
    const models = await writeTinyBackbones(join(dir.path, 'models'));
    const dataset = await openDataset(data);
    const cacheDir = join(dir.path, 'cache');
    const backbone = await Backbone.open(models.cnn);
    const sources = async () => {
      const out: string[] = [];
      for await (const r of extractFeatures(dataset.items, backbone, { cacheDir })) out.push(r.source);
      return out;
    };
    expect(await sources()).toEqual(['computed', 'computed', 'computed', 'computed']);
    expect(await sources()).toEqual(['hit', 'hit', 'hit', 'hit']);

    const configDir = join(cacheDir, (await readdir(cacheDir))[0]);
    const shard = join(configDir, (await readdir(configDir))[0]);
    const entry = join(shard, (await readdir(shard))[0]);
    await truncate(entry, 20);
    const logs: string[] = [];
    const again: string[] = [];
    for await (const r of extractFeatures(dataset.items, backbone, { cacheDir, log: (l) => logs.push(l) })) again.push(r.source);
    expect(again.filter((s) => s === 'recomputed')).toHaveLength(1);
    expect(logs.join('\n')).toMatch(/damaged/);
    expect(await sources()).toEqual(['hit', 'hit', 'hit', 'hit']);

    // Cached features equal freshly computed ones within float16 precision.
    const fresh = [];
    for await (const r of extractFeatures(dataset.items, backbone)) fresh.push(r.features.data);
    let i = 0;
    for await (const r of extractFeatures(dataset.items, backbone, { cacheDir })) expectClose(r.features.data, fresh[i++], { atol: 1e-3, rtol: 2 ** -10 });

    // A first run with a cache yields what the cache will hold: the same values as every later run.
    const coldDir = join(dir.path, 'cold-cache');
    const cold = [];
    for await (const r of extractFeatures(dataset.items, backbone, { cacheDir: coldDir })) {
      expect(r.features.half).toBeUndefined(); // the half bits went to the cache, not to the caller
      cold.push({ source: r.source, data: r.features.data });
    }
    const warm = [];
    for await (const r of extractFeatures(dataset.items, backbone, { cacheDir: coldDir })) warm.push({ source: r.source, data: r.features.data });
    expect(cold.map((c) => c.source)).toEqual(['computed', 'computed', 'computed', 'computed']);
    expect(warm.map((w) => w.source)).toEqual(['hit', 'hit', 'hit', 'hit']);
    for (let j = 0; j < cold.length; j++) expect(Array.from(cold[j].data)).toEqual(Array.from(warm[j].data));
    await backbone.close();
  });
});

describe('extractFeatureCells and the k-means sample', () => {
  it('gives the same cells as sampling whole maps: without a cache, on a first run with one, and from it', async () => {
    const data = join(dir.path, 'data');
    await makeTinyDataset(data, { images: 5 });
    const models = await writeTinyBackbones(join(dir.path, 'models'));
    const dataset = await openDataset(data);
    const backbone = await Backbone.open(models.cnn);
    const cacheDir = join(dir.path, 'cache');
    // The reference: whole maps, then sampleUnitCells (as the sample was drawn before extractFeatureCells).
    const wholeMaps = async (options: { cacheDir?: string }) => {
      const rng = createRng(7);
      const out = new Float32Array(5 * 30 * 8);
      let rows = 0;
      for await (const { features } of extractFeatures(dataset.items, backbone, options)) rows += sampleUnitCells(features, 30, rng, out, rows);
      return Array.from(out.subarray(0, rows * 8));
    };
    const sampled = async (options: { cacheDir?: string }) => {
      const s = await sampleFeatureCells(dataset, backbone, createRng(7), { ...options, maxSamples: 150 });
      expect(s.channels).toBe(8);
      return Array.from(s.points);
    };
    expect(await sampled({})).toEqual(await wholeMaps({}));
    const cold = await sampled({ cacheDir });
    expect(cold).toEqual(await wholeMaps({ cacheDir }));
    expect(await sampled({ cacheDir })).toEqual(cold);

    // Cells in the order picked, with their sources.
    const sources: string[] = [];
    for await (const r of extractFeatureCells(dataset.items, backbone, () => [3, 0, 3], { cacheDir })) {
      sources.push(r.source);
      expect(r.cells).toEqual([3, 0, 3]);
      expect(r.rows.length).toBe(3 * r.channels);
      expect(Array.from(r.rows.subarray(0, r.channels))).toEqual(Array.from(r.rows.subarray(2 * r.channels)));
    }
    expect(sources).toEqual(['hit', 'hit', 'hit', 'hit', 'hit']);
    expect(pickRandomCells(4, 9, createRng(1))).toEqual([0, 1, 2, 3]);
    await backbone.close();
  });
});
