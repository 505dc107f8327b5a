import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { Backbone, descriptorPathFor, vitGrid } from './backbone.js';
import { resizeBilinearChw } from './feature-ops.js';
import { makeTempDir, writeTinyBackbones } from '../test-support/fixtures.js';
import { expectClose, FLOAT32_TOLERANCE } from '../test-support/expect-close.js';
import { BackboneError } from '../errors.js';
import { probeProvider } from '../device/execution-device.js';

let dir: { path: string; remove: () => Promise<void> };
let models: { cnn: string; vit: string };
let image: Buffer;

beforeAll(async () => {
  dir = await makeTempDir();
  models = await writeTinyBackbones(dir.path);
  const rgb = Buffer.alloc(40 * 24 * 3).map((_, i) => (i * 37) % 256);
  image = await sharp(rgb, { raw: { width: 40, height: 24, channels: 3 } }).png().toBuffer();
});
afterAll(() => dir.remove());

describe('Backbone (CNN feature maps)', () => {
  it('infers a descriptor and returns [C, h, w] at the output stride', async () => {
    const backbone = await Backbone.open(models.cnn);
    expect(backbone.descriptor).toMatchObject({ kind: 'cnn', input: 'input', outputs: ['feat_s2'], stride: 2 });
    const features = await backbone.extract(image);
    expect([features.channels, features.height, features.width]).toEqual([8, 12, 20]);
    expect(features.data.length).toBe(8 * 12 * 20);
    await backbone.close();
  });

  it('concatenates several outputs on the finest grid (coarser ones upsampled)', async () => {
    const both = await Backbone.open(models.cnn, { overrides: { outputs: ['feat_s2', 'feat_s4'] } });
    const coarse = await Backbone.open(models.cnn, { overrides: { outputs: ['feat_s4'] } });
    const fine = await Backbone.open(models.cnn, { overrides: { outputs: ['feat_s2'] } });
    const f = await both.extract(image);
    const c = await coarse.extract(image);
    const s = await fine.extract(image);
    expect([f.channels, f.height, f.width]).toEqual([20, 12, 20]);
    expectClose(f.data.subarray(0, 8 * 240), s.data, FLOAT32_TOLERANCE);
    expectClose(f.data.subarray(8 * 240), resizeBilinearChw(c.data, 12, 6, 10, 12, 20), FLOAT32_TOLERANCE);
    await Promise.all([both.close(), coarse.close(), fine.close()]);
  });

  it('L2-normalises each output per cell when outputNorm is l2', async () => {
    const backbone = await Backbone.open(models.cnn, { overrides: { outputs: ['feat_s2'], outputNorm: 'l2' } });
    const f = await backbone.extract(image);
    const cells = f.height * f.width;
    for (const p of [0, 17, cells - 1]) {
      let norm = 0;
      for (let c = 0; c < f.channels; c++) norm += f.data[c * cells + p] ** 2;
      expect(norm === 0 || Math.abs(norm - 1) < 1e-5).toBe(true);
    }
    await backbone.close();
  });

  it('rounds the input to a multiple of the stride under the native policy', async () => {
    const backbone = await Backbone.open(models.cnn, { overrides: { inputSize: { kind: 'native', multipleOf: 8 } } });
    const f = await backbone.extract(image); // 40x24 is already a multiple of 8
    expect([f.height, f.width]).toEqual([12, 20]);
    const fixed = await Backbone.open(models.cnn, { overrides: { inputSize: { kind: 'fixed', width: 16, height: 16 } } });
    const g = await fixed.extract(image);
    expect([g.height, g.width]).toEqual([8, 8]);
    await Promise.all([backbone.close(), fixed.close()]);
  });

  it('uses a descriptor file beside the model and checks its sha256', async () => {
    const path = join(dir.path, 'described.onnx');
    await writeFile(path, await import('node:fs/promises').then((fs) => fs.readFile(models.cnn)));
    await writeFile(descriptorPathFor(path), JSON.stringify({ id: 'described', kind: 'cnn', input: 'input', outputs: ['feat_s4'], stride: 4 }));
    const backbone = await Backbone.open(path);
    expect(backbone.descriptor.id).toBe('described');
    expect((await backbone.extract(image)).channels).toBe(12);
    await backbone.close();
    await writeFile(descriptorPathFor(path), JSON.stringify({ id: 'described', kind: 'cnn', input: 'input', outputs: ['feat_s4'], stride: 4, sha256: '0'.repeat(64) }));
    await expect(Backbone.open(path)).rejects.toThrow(/sha256/);
  });

  it('rejects unknown outputs, missing files and non-models with a clear message', async () => {
    await expect(Backbone.open(models.cnn, { overrides: { outputs: ['nope'] } })).rejects.toThrow(/no output "nope".*feat_s2/);
    await expect(Backbone.open(join(dir.path, 'missing.onnx'))).rejects.toThrow(BackboneError);
    const junk = join(dir.path, 'junk.onnx');
    await writeFile(junk, 'not a model');
    await expect(Backbone.open(junk)).rejects.toThrow(/cannot load backbone/);
  });

  for (const provider of ['cuda', 'webgpu'] as const) {
    it(`runs on ${provider} when it works, else falls back to the CPU with one log line`, async () => {
      const status = await probeProvider(provider);
      const lines: string[] = [];
      const backbone = await Backbone.open(models.cnn, { device: provider, log: (l) => lines.push(l) });
      expect(backbone.device).toBe(status.available ? provider : 'cpu');
      expect(lines).toEqual([status.available ? `device: ${provider} (requested)` : `device: cpu (${provider} requested but unavailable: ${status.reason})`]);
      expect((await backbone.extract(image)).channels).toBe(8);
      await backbone.close();
    });
  }
});

describe('Backbone (ViT tokens)', () => {
  it('drops the CLS token and reshapes tokens to the patch grid', async () => {
    const backbone = await Backbone.open(models.vit, { overrides: { inputSize: { kind: 'native', multipleOf: 4 } } });
    expect(backbone.descriptor).toMatchObject({ kind: 'vit', stride: 4, input: 'pixel_values', outputs: ['last_hidden_state'] });
    const features = await backbone.extract(image);
    expect([features.channels, features.height, features.width]).toEqual([16, 6, 10]);
    await backbone.close();
  });

  it('matches a hand transposition of the raw tokens', async () => {
    const ort = await import('onnxruntime-node');
    const { readFile } = await import('node:fs/promises');
    const session = await ort.InferenceSession.create(await readFile(models.vit));
    const backbone = await Backbone.open(models.vit, { overrides: { inputSize: { kind: 'fixed', width: 16, height: 8 } } });
    const decoded = await backbone.decode(image);
    const { normalizeToChw } = await import('../image/image.js');
    const input = new ort.Tensor('float32', normalizeToChw(decoded, backbone.descriptor.mean, backbone.descriptor.std), [1, 3, 8, 16]);
    const tokens = (await session.run({ pixel_values: input })).last_hidden_state;
    expect(tokens.dims).toEqual([1, 1 + 2 * 4, 16]);
    const features = await backbone.extractDecoded(decoded);
    const raw = tokens.data as Float32Array;
    // Patch (row 1, col 2) is token 1 + 1*4 + 2; channel 5.
    expect(features.data[5 * 8 + 1 * 4 + 2]).toBeCloseTo(raw[(1 + 6) * 16 + 5], 6);
    await backbone.close();
    await session.release();
  });

  it('finds the patch grid from the token count', () => {
    expect(vitGrid(28 * 28, 224, 224)).toEqual({ height: 28, width: 28 });
    expect(vitGrid(14 * 20, 320, 224)).toEqual({ height: 14, width: 20 });
    expect(vitGrid(7, 64, 64)).toBeUndefined();
  });
});
