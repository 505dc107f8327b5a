// POST /segment with a tiny backbone built by the test: masks of the image's size in every format,
// and clear errors for non-images, another backbone and missing tokens.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import type { FastifyInstance } from 'fastify';
import { Backbone, featureConfigKey } from '@fuss/core';
import { buildTinyCnn } from '../../core/src/test-support/tiny-backbones.js';
import { makeTempDir } from '../../core/src/test-support/fixtures.js';
import { buildApp } from './app.js';
import { freshPglite, type TestDatabase } from './test-support/databases.js';
import { SegmentPool } from './segmentation/worker-pool.js';

const ADMIN = 'admin-token-for-tests-0123456789';
const admin = { authorization: `Bearer ${ADMIN}` };
let dir: Awaited<ReturnType<typeof makeTempDir>>;
let test: TestDatabase;
let app: FastifyInstance;
let backbone: Backbone;
let pool: SegmentPool;
let image: Buffer;

beforeAll(async () => {
  dir = await makeTempDir();
  const modelPath = join(dir.path, 'tiny-cnn.onnx');
  await writeFile(modelPath, buildTinyCnn());
  backbone = await Backbone.open(modelPath);
  pool = await SegmentPool.start({ backbonePath: modelPath, workers: 1, queue: 4, threads: 1, timeoutMs: 30_000 });
  test = await freshPglite();
  await test.db.migrate();
  app = await buildApp({ db: test.db, config: { adminToken: ADMIN }, segmentPool: pool });
  const rgb = Buffer.alloc(30 * 20 * 3).map((_, i) => (i % 3 === 0 ? 200 : (i * 7) % 256));
  image = await sharp(rgb, { raw: { width: 30, height: 20, channels: 3 } }).jpeg().toBuffer();
});
afterAll(async () => {
  await app.close();
  await test.dispose();
  await pool.close();
  await backbone.close();
  await dir.remove();
});

async function federation(sha256 = backbone.descriptor.sha256) {
  const response = await app.inject({
    method: 'POST',
    url: '/v1/federations',
    headers: admin,
    payload: { name: `seg-${Math.random()}`, backbone: { id: 'tiny-cnn', sha256, featureKey: featureConfigKey(backbone.descriptor), channels: 8 }, codeDim: 4, k: 3, rounds: 1, localSteps: 1, maxParticipants: 1 },
  });
  return response.json().id as string;
}

const segment = (id: string, format: string, body: Buffer = image, type = 'image/jpeg', headers: object = admin) =>
  app.inject({ method: 'POST', url: `/segment?federation=${id}&format=${format}`, headers: { ...headers, 'content-type': type }, payload: body });

describe('POST /segment', () => {
  it('returns a PNG of class ids, JSON, or an overlay, all of the image size', async () => {
    const id = await federation();
    const png = await segment(id, 'png');
    expect(png.statusCode, png.body).toBe(200);
    expect(png.headers['content-type']).toBe('image/png');
    expect(png.headers['x-model-version']).toBe('0');
    const pngMeta = await sharp(png.rawPayload).metadata();
    expect([pngMeta.width, pngMeta.height, pngMeta.channels]).toEqual([30, 20, 1]);
    const { data } = await sharp(png.rawPayload).extractChannel(0).raw().toBuffer({ resolveWithObject: true });
    expect(Math.max(...data)).toBeLessThan(3);
    const json = (await segment(id, 'json')).json();
    expect([json.width, json.height, json.k, json.mask.length]).toEqual([30, 20, 3, 600]);
    expect(json.mask).toEqual(Array.from(data));
    // The same image as a multipart/form-data file gives the same mask.
    const boundary = 'fussboundary';
    const form = Buffer.concat([
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="x.jpg"\r\nContent-Type: image/jpeg\r\n\r\n`),
      image,
      Buffer.from(`\r\n--${boundary}--\r\n`),
    ]);
    const viaForm = await app.inject({ method: 'POST', url: `/segment?federation=${id}&format=json`, headers: { ...admin, 'content-type': `multipart/form-data; boundary=${boundary}` }, payload: form });
    expect(viaForm.statusCode, viaForm.body).toBe(200);
    expect(viaForm.json().mask).toEqual(json.mask);
    const overlay = await segment(id, 'overlay');
    const meta = await sharp(overlay.rawPayload).metadata();
    expect([meta.format, meta.width, meta.height, meta.channels]).toEqual(['png', 30, 20, 3]);
  });

  it("carries the federation's class names in JSON and the legend, and refines with the CRF on request", async () => {
    const id = await federation();
    const put = await app.inject({ method: 'PUT', url: `/v1/federations/${id}/classes`, headers: admin, payload: { classes: [{ id: 0, name: 'road', colour: '#804080' }, { id: 2, name: 'sky' }] } });
    expect(put.statusCode, put.body).toBe(200);
    const json = (await segment(id, 'json')).json();
    expect(json.modelVersion).toBe(0);
    expect(json.classes.map((c: { id: number; name: string }) => [c.id, c.name])).toEqual([[0, 'road'], [1, 'class 1'], [2, 'sky']]);
    expect(json.classes[0].colour).toBe('#804080');
    expect(json.classes.reduce((sum: number, c: { pixels: number }) => sum + c.pixels, 0)).toBe(600);
    const refined = await app.inject({ method: 'POST', url: `/segment?federation=${id}&format=json&refine=crf`, headers: { ...admin, 'content-type': 'image/jpeg' }, payload: image });
    expect(refined.statusCode, refined.body).toBe(200);
    expect(refined.json().mask).toHaveLength(600);
    const legend = await app.inject({ method: 'POST', url: `/segment?federation=${id}&format=overlay&legend=true`, headers: { ...admin, 'content-type': 'image/jpeg' }, payload: image });
    const meta = await sharp(legend.rawPayload).metadata();
    // The legend panel (240 pixels) beside the 30 x 20 overlay; the canvas is at least as tall as the image.
    expect(meta.width).toBe(30 + 240);
    expect(meta.height).toBeGreaterThanOrEqual(20);
    expect((await app.inject({ method: 'POST', url: `/segment?federation=${id}&refine=sharpen`, headers: { ...admin, 'content-type': 'image/jpeg' }, payload: image })).statusCode).toBe(400);
  });

  it('answers clear 4xx errors', async () => {
    const id = await federation();
    const notImage = await segment(id, 'png', Buffer.from('this is not an image'), 'image/png');
    expect(notImage.statusCode).toBe(415);
    expect(notImage.json().detail).toMatch(/JPEG or PNG/);
    const other = await federation('d'.repeat(64));
    const mismatch = await segment(other, 'png');
    expect(mismatch.statusCode).toBe(409);
    expect(mismatch.json().detail).toMatch(/this server runs tiny-cnn/);
    expect((await segment(id, 'png', image, 'image/jpeg', {})).statusCode).toBe(401);
    expect((await segment(id, 'gif')).statusCode).toBe(400);
    expect((await segment(id, 'png', Buffer.from('{}'), 'application/json')).statusCode).toBe(415);
  });
});
