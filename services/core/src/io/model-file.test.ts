import { describe, expect, it } from 'vitest';
import { decodeModel, encodeModel, IncompatibleModelError } from './model-file.js';
import { decodeSafetensors, encodeSafetensors } from './safetensors.js';
import { tinyModel } from '../test-support/tiny-model.js';

const model = tinyModel;

describe('model file', () => {
  it('round-trips with PyTorch 1x1-conv shapes', () => {
    const original = model();
    const bytes = encodeModel(original);
    const raw = decodeSafetensors(bytes);
    expect(raw.tensors['head.l2.weight'].dims).toEqual([6, 6, 1, 1]);
    expect(raw.tensors['head.l1.weight'].dims).toEqual([3, 6, 1, 1]);
    expect(raw.tensors.centroids.dims).toEqual([4, 3]);
    expect(raw.metadata).toMatchObject({ backbone_sha256: 'a'.repeat(64), k: '4', round: '2', version: '5' });
    const decoded = decodeModel(bytes, { backboneSha256: 'a'.repeat(64), featureKey: 'key1', k: 4 });
    expect(decoded.head.l3Weight).toEqual(original.head.l3Weight);
    expect(decoded.centroids).toEqual(original.centroids);
    expect(decoded.info).toEqual({ steps: 10 });
  });

  it('decodes from a Node Buffer that is a view into a larger pool (as readFile returns)', () => {
    const bytes = encodeModel(model());
    const pool = Buffer.alloc(bytes.length + 13);
    pool.fill(0xff);
    pool.set(bytes, 13);
    const decoded = decodeModel(pool.subarray(13));
    expect(decoded.head.l2Weight).toEqual(model().head.l2Weight);
    expect(decoded.centroids).toEqual(model().centroids);
  });

  it('refuses another backbone, other features or another K', () => {
    const bytes = encodeModel(model());
    expect(() => decodeModel(bytes, { backboneSha256: 'b'.repeat(64) })).toThrow(IncompatibleModelError);
    expect(() => decodeModel(bytes, { featureKey: 'other' })).toThrow(/other backbone features/);
    expect(() => decodeModel(bytes, { k: 5 })).toThrow(/k 4, expected 5/);
  });

  it('refuses missing, extra or misshapen tensors and foreign files', () => {
    const { tensors, metadata } = decodeSafetensors(encodeModel(model()));
    const without = { ...tensors };
    delete without.centroids;
    expect(() => decodeModel(encodeSafetensors(without, metadata))).toThrow(/"centroids" is missing/);
    expect(() => decodeModel(encodeSafetensors({ ...tensors, extra: { dims: [1], data: new Float32Array(1) } }, metadata))).toThrow(/unexpected tensors "extra"/);
    expect(() => decodeModel(encodeSafetensors({ ...tensors, centroids: { dims: [3, 4], data: new Float32Array(12) } }, metadata))).toThrow(/shape \[3,4\], expected \[4,3\]/);
    expect(() => decodeModel(encodeSafetensors(tensors, { ...metadata, format: 'other' }))).toThrow(/not a FUSS model/);
  });

  it('gives views into the bytes with copy: false (aligned float32), copies otherwise, and checks values either way', () => {
    const bytes = encodeModel(model());
    const copied = decodeModel(bytes);
    const viewed = decodeModel(bytes, {}, 'model', { copy: false });
    expect(viewed.head.l2Weight.buffer).toBe(bytes.buffer);
    expect(copied.head.l2Weight.buffer).not.toBe(bytes.buffer);
    expect(Array.from(viewed.head.l2Weight)).toEqual(Array.from(copied.head.l2Weight));
    expect(Array.from(viewed.centroids)).toEqual(Array.from(copied.centroids));
    // Shifted by one byte in a larger buffer: not aligned, so copied.
    const shifted = new Uint8Array(bytes.length + 1);
    shifted.set(bytes, 1);
    const unaligned = decodeModel(shifted.subarray(1), {}, 'model', { copy: false });
    expect(unaligned.head.l2Weight.buffer).not.toBe(shifted.buffer);
    expect(Array.from(unaligned.head.l2Weight)).toEqual(Array.from(copied.head.l2Weight));
    new DataView(bytes.buffer).setFloat32(bytes.length - 4, Number.NEGATIVE_INFINITY, true);
    expect(() => decodeModel(bytes, {}, 'model', { copy: false })).toThrow(/non-finite value \(-Infinity\)/);
  });
});
