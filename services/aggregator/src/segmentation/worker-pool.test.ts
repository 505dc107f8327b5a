// The /segment worker pool with a tiny backbone: masks at the image's size from a bounded working
// size, a full queue answered 503 with Retry-After at once, a job past its time limit answered 503 (its
// worker finishes it, then serves again), bad images answered 400 without harming the pool, and a close
// during inference that leaves the process standing.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { Backbone, createRng, encodeModel, featureConfigKey, initCentroids, initHead, sha256Hex } from '@fuss/core';
import { buildTinyCnn } from '../../../core/src/test-support/tiny-backbones.js';
import { makeTempDir } from '../../../core/src/test-support/fixtures.js';
import { SegmentPool, type SegmentRequest } from './worker-pool.js';

let dir: Awaited<ReturnType<typeof makeTempDir>>;
let modelPath = '';
let model: Uint8Array;
let wide: Uint8Array;

function makeModel(channels: number, k: number, descriptor: { sha256: string; featureKey: string }): Uint8Array {
  const rng = createRng(k);
  return encodeModel({ head: initHead({ channels, codeDim: 4 }, rng), centroids: initCentroids(k, 4, rng), channels, codeDim: 4, k, backbone: { id: 'tiny-cnn', ...descriptor }, round: 0, version: 0 });
}

beforeAll(async () => {
  dir = await makeTempDir('fuss-pool-');
  modelPath = join(dir.path, 'tiny-cnn.onnx');
  await writeFile(modelPath, buildTinyCnn());
  const backbone = await Backbone.open(modelPath);
  const descriptor = { sha256: backbone.descriptor.sha256, featureKey: featureConfigKey(backbone.descriptor) };
  const channels = await backbone.featureChannels();
  await backbone.close();
  model = makeModel(channels, 3, descriptor);
  wide = makeModel(channels, 300, descriptor);
});
afterAll(async () => dir.remove());

const request = (image: Uint8Array, overrides: Partial<SegmentRequest> = {}): SegmentRequest => ({
  image,
  format: 'png',
  modelVersion: 0,
  modelSha256: sha256Hex(model),
  modelBytes: async () => model,
  maxSide: 64,
  maxPixels: 25_000_000,
  ...overrides,
});

const picture = (width: number, height: number) => sharp({ create: { width, height, channels: 3, background: { r: 200, g: 30, b: 90 } } }).composite([{ input: Buffer.from(`<svg width="${width}" height="${height}"><rect x="0" y="0" width="${width / 2}" height="${height}" fill="black"/></svg>`) }]).png().toBuffer();

describe('SegmentPool', () => {
  it('answers masks of the image size computed at a bounded working size, in every format', async () => {
    const pool = await SegmentPool.start({ backbonePath: modelPath, workers: 1, queue: 4, threads: 1, timeoutMs: 30_000 });
    try {
      const image = await picture(400, 200);
      const png = await pool.segment(request(image));
      expect(png.headers['x-working-size']).toBe('64x32');
      const meta = await sharp(png.body as Buffer).metadata();
      expect([meta.width, meta.height, meta.channels]).toEqual([400, 200, 1]);
      const json = JSON.parse((await pool.segment(request(image, { format: 'json' }))).body as string);
      expect([json.width, json.height, json.mask.length]).toEqual([400, 200, 80_000]);
      expect(Math.max(...json.mask)).toBeLessThan(3);
      const overlay = await sharp((await pool.segment(request(image, { format: 'overlay' }))).body as Buffer).metadata();
      expect([overlay.width, overlay.height, overlay.channels]).toEqual([400, 200, 3]);
      // More than 256 classes: a 16-bit PNG of class ids.
      const sixteen = await pool.segment(request(image, { modelSha256: sha256Hex(wide), modelBytes: async () => wide }));
      expect((await sharp(sixteen.body as Buffer).metadata()).depth).toBe('ushort');
      // A damaged image is that request's 400, and the worker goes on.
      const truncated = image.subarray(0, image.length / 2);
      await expect(pool.segment(request(truncated))).rejects.toMatchObject({ status: 400 });
      expect((await pool.segment(request(image))).contentType).toBe('image/png');
    } finally {
      await pool.close();
    }
  });

  it('refuses work beyond its queue at once with 503 and Retry-After', async () => {
    const pool = await SegmentPool.start({ backbonePath: modelPath, workers: 1, queue: 1, threads: 1, timeoutMs: 30_000 });
    try {
      const image = await picture(1500, 1000);
      const big = request(image, { maxSide: 1500, format: 'overlay' });
      const running = pool.segment(big);
      const waiting = pool.segment(big);
      const started = performance.now();
      await expect(pool.segment(big)).rejects.toMatchObject({ status: 503, retryAfterSeconds: expect.any(Number) });
      expect(performance.now() - started).toBeLessThan(50);
      await Promise.all([running, waiting]);
      expect(pool.load).toEqual({ running: 0, waiting: 0 });
    } finally {
      await pool.close();
    }
  });

  it('answers a job past its time limit with 503 at once, and its worker then goes on serving', async () => {
    const pool = await SegmentPool.start({ backbonePath: modelPath, workers: 1, queue: 2, threads: 1, timeoutMs: 150 });
    try {
      const slow = request(await picture(4000, 3000), { maxSide: 4000, format: 'overlay' });
      const started = performance.now();
      await expect(pool.segment(slow)).rejects.toMatchObject({ status: 503, message: expect.stringMatching(/longer than 150 ms/) });
      expect(performance.now() - started).toBeLessThan(1000);
      // The worker finishes the abandoned image (it cannot be interrupted), then answers the next one.
      expect(pool.load.running).toBe(1);
      const quick = await pool.segment(request(await picture(40, 20)));
      expect(quick.contentType).toBe('image/png');
      expect(pool.load).toEqual({ running: 0, waiting: 0 });
    } finally {
      await pool.close();
    }
  });

  // Terminating a worker thread inside onnxruntime aborts the whole process (this test file's with it),
  // so this fails by crashing if close() ever terminates workers again.
  it('closes while images are being segmented without taking the process down', async () => {
    for (let attempt = 0; attempt < 3; attempt++) {
      const pool = await SegmentPool.start({ backbonePath: modelPath, workers: 2, queue: 2, threads: 1, timeoutMs: 30_000 });
      const big = request(await picture(1500, 1000), { maxSide: 1500, format: 'overlay' });
      const jobs = [pool.segment(big), pool.segment(big), pool.segment(big)].map((job) => job.then(() => 'done', (err: { status?: number }) => err.status));
      await new Promise((resolve) => setTimeout(resolve, 30 + 40 * attempt));
      await pool.close();
      for (const outcome of await Promise.all(jobs)) expect([503, 'done']).toContain(outcome);
      await expect(pool.segment(big)).rejects.toMatchObject({ status: 503 });
    }
  });
});
