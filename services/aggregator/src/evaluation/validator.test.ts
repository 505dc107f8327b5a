// Server-side validation in its worker thread: a model is evaluated and its result kept by sha256; a
// close during an evaluation stops it at its next image (the thread ends itself: terminating it inside
// onnxruntime would abort this whole process) and records nothing, so the model is evaluated after a restart.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Backbone, createRng, encodeModel, featureConfigKey, initCentroids, initHead, sha256Hex } from '@fuss/core';
import { makeTempDir, makeTinyDataset, writeTinyBackbones } from '../../../core/src/test-support/fixtures.js';
import { Validator } from './validator.js';

let dir: Awaited<ReturnType<typeof makeTempDir>>;
let backbonePath = '';
let model: Uint8Array;

beforeAll(async () => {
  dir = await makeTempDir('fuss-validator-');
  backbonePath = (await writeTinyBackbones(join(dir.path, 'models'))).cnn;
  // Enough images at a size that an evaluation takes a while on the tiny backbone.
  await makeTinyDataset(join(dir.path, 'data'), { images: 60, width: 640, height: 480 });
  const backbone = await Backbone.open(backbonePath);
  const descriptor = { sha256: backbone.descriptor.sha256, featureKey: featureConfigKey(backbone.descriptor) };
  const channels = await backbone.featureChannels();
  await backbone.close();
  const rng = createRng(3);
  model = encodeModel({ head: initHead({ channels, codeDim: 4 }, rng), centroids: initCentroids(2, 4, rng), channels, codeDim: 4, k: 2, backbone: { id: 'tiny-cnn', ...descriptor }, round: 0, version: 0 });
}, 120_000);
afterAll(async () => dir.remove());

describe('Validator', () => {
  it('stops an evaluation when closed, records nothing for it, and evaluates the model after a restart', async () => {
    const options = { datasetDir: join(dir.path, 'data'), backbonePath, dir: join(dir.path, 'validation') };
    const first = await Validator.start(options);
    const stopped = first.evaluate(sha256Hex(model), model);
    await new Promise((resolve) => setTimeout(resolve, 150));
    const closing = performance.now();
    await first.close();
    await expect(stopped).rejects.toThrow(/worker stopped/);
    // At its next image, not at the end of the dataset.
    expect(performance.now() - closing).toBeLessThan(2000);

    const second = await Validator.start(options);
    try {
      expect(second.results.size).toBe(0);
      const result = await second.evaluate(sha256Hex(model), model);
      expect(result).toMatchObject({ sha256: sha256Hex(model), images: 60 });
      expect(result.mIoU).toBeGreaterThan(0);
      const lines = (await readFile(join(options.dir, `results-${second.dataset.key}.jsonl`), 'utf8')).trim().split('\n');
      expect(lines.map((line) => JSON.parse(line).sha256)).toEqual([sha256Hex(model)]);
    } finally {
      await second.close();
    }
  });
});
