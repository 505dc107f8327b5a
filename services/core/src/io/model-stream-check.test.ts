import { describe, expect, it } from 'vitest';
import { decodeModel, encodeModel, IncompatibleModelError } from './model-file.js';
import { ModelStreamCheck } from './model-stream-check.js';
import { SafetensorsError } from './safetensors.js';
import { NonFiniteError } from '../errors.js';
import { initCentroids, initHead } from '../head/head-init.js';
import { createRng } from '../math/rng.js';
import { tinyModel } from '../test-support/tiny-model.js';

const model = tinyModel;

/** Feeds `bytes` to a check in chunks of `chunk` bytes, as an upload arrives; returns where it threw. */
function stream(bytes: Uint8Array, chunk: number, expect = {}): { header?: ReturnType<ModelStreamCheck['finish']>; error?: Error; at?: number } {
  const file = new Uint8Array(bytes.length);
  const check = new ModelStreamCheck(file, { dtypes: ['F32'], ...expect }, 'update');
  let received = 0;
  try {
    while (received < bytes.length) {
      const end = Math.min(bytes.length, received + chunk);
      file.set(bytes.subarray(received, end), received);
      received = end;
      check.advance(received);
    }
    return { header: check.finish() };
  } catch (error) {
    return { error: error as Error, at: received };
  }
}

/** The byte offset of value `index` of tensor `name` in an encoded model. */
function offsetOf(bytes: Uint8Array, name: string, index: number): number {
  const headerLength = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  const header = JSON.parse(Buffer.from(bytes.subarray(8, 8 + headerLength)).toString('utf8'));
  return 8 + headerLength + header[name].data_offsets[0] + index * 4;
}

describe('ModelStreamCheck', () => {
  it('accepts a model in chunks of any size and reads the header decodeModel reads', () => {
    const bytes = encodeModel(model());
    const decoded = decodeModel(bytes);
    for (const chunk of [1, 7, 64, 1000, bytes.length]) {
      const { header, error } = stream(bytes, chunk);
      expect(error).toBeUndefined();
      expect(header).toEqual({ channels: 6, codeDim: 3, k: 4, backbone: decoded.backbone, round: 2, version: 5, info: { steps: 10 } });
    }
  });

  it('refuses a non-finite value as soon as its bytes arrive, not before', () => {
    const bytes = encodeModel(model());
    const at = offsetOf(bytes, 'head.l2.weight', 11);
    new DataView(bytes.buffer).setFloat32(at, Number.POSITIVE_INFINITY, true);
    const { error, at: thrownAt } = stream(bytes, 4);
    expect(error).toBeInstanceOf(NonFiniteError);
    expect(error!.message).toContain('"head.l2.weight" holds a non-finite value (Infinity) at index 11');
    expect(thrownAt).toBe(at + 4);
    expect(() => decodeModel(bytes)).toThrow(NonFiniteError);
  });

  it('refuses a header of the wrong backbone or shape before any value', () => {
    const bytes = encodeModel(model());
    const dataStart = offsetOf(bytes, 'centroids', 0);
    const wrong = stream(bytes, 16, { backboneSha256: 'b'.repeat(64) });
    expect(wrong.error).toBeInstanceOf(IncompatibleModelError);
    expect(wrong.at!).toBeLessThanOrEqual(dataStart + 16);
    const shape = stream(bytes, 16, { channels: 7 });
    expect(shape.error).toBeInstanceOf(IncompatibleModelError);
    const other = stream(encodeModel({ ...model(), codeDim: 2, head: initHead({ channels: 6, codeDim: 2 }, createRng(2)), centroids: initCentroids(4, 2, createRng(2)) }), 16, { codeDim: 3 });
    expect(other.error).toBeInstanceOf(IncompatibleModelError);
  });

  it('refuses a header longer than its limit after 8 bytes', () => {
    const bytes = encodeModel(model());
    const { error, at } = stream(bytes, 8, { maxHeaderBytes: 64 });
    expect(error).toBeInstanceOf(SafetensorsError);
    expect(error!.message).toContain('exceeds the 64-byte limit');
    expect(at).toBe(8);
  });

  it('reads values in place when the data section is not 4-byte aligned', () => {
    // An unpadded header (another writer than ours): the data starts at an odd offset.
    const good = encodeModel(model());
    const headerLength = Number(new DataView(good.buffer).getBigUint64(0, true));
    const json = Buffer.from(good.subarray(8, 8 + headerLength)).toString('utf8').trimEnd() + ' ';
    const padded = Buffer.from(json.length % 4 === 1 ? json : json + ' '.repeat((4 + 1 - (json.length % 4)) % 4));
    expect((8 + padded.length) % 4).toBe(1);
    const bytes = new Uint8Array(8 + padded.length + good.length - 8 - headerLength);
    new DataView(bytes.buffer).setBigUint64(0, BigInt(padded.length), true);
    bytes.set(padded, 8);
    bytes.set(good.subarray(8 + headerLength), 8 + padded.length);
    expect(stream(bytes, 5).error).toBeUndefined();
    new DataView(bytes.buffer).setUint32(8 + padded.length + 40, 0x7fc00000, true);
    expect(stream(bytes, 5).error).toBeInstanceOf(NonFiniteError);
    expect(() => decodeModel(bytes)).toThrow(NonFiniteError);
  });

  it('agrees with decodeModel on damaged files', () => {
    const good = encodeModel(model());
    const rng = createRng(7);
    let refused = 0;
    for (let trial = 0; trial < 300; trial++) {
      const bytes = new Uint8Array(good);
      // One to three random bytes overwritten, anywhere (header or values).
      for (let j = 0, n = 1 + rng.int(3); j < n; j++) bytes[rng.int(bytes.length)] = rng.int(256);
      let decodeError: Error | undefined;
      try {
        decodeModel(bytes, { dtypes: ['F32'] });
      } catch (err) {
        decodeError = err as Error;
      }
      const streamed = stream(bytes, 1 + rng.int(300));
      expect(streamed.error?.constructor, `trial ${trial}: ${decodeError?.message} / ${streamed.error?.message}`).toBe(decodeError?.constructor);
      if (decodeError) refused++;
    }
    expect(refused).toBeGreaterThan(20);
  });

  it('refuses a file that ends early', () => {
    const bytes = encodeModel(model());
    const check = new ModelStreamCheck(new Uint8Array(bytes.length), {}, 'update');
    expect(() => check.finish()).toThrow(SafetensorsError);
  });
});
