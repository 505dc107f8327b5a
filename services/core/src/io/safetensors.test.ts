import { describe, expect, it } from 'vitest';
import { decodeSafetensors, encodeSafetensors } from './safetensors.js';
import { NonFiniteError } from '../errors.js';

function fileFrom(header: object, data: Uint8Array, pad = true): Uint8Array {
  let json = JSON.stringify(header);
  if (pad) json += ' '.repeat((8 - ((8 + json.length) % 8)) % 8);
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(Buffer.from(json), 8);
  out.set(data, 8 + json.length);
  return out;
}

const f32 = (values: number[]) => new Uint8Array(new Float32Array(values).buffer);

describe('safetensors', () => {
  it('round-trips tensors and metadata, header padded to 8 bytes', () => {
    const bytes = encodeSafetensors(
      { b: { dims: [2], data: new Float32Array([1, -2]) }, a: { dims: [2, 2, 1, 1], data: new Float32Array([0.5, 1.5, 2.5, 3.5]) } },
      { format: 'x', round: '3' },
    );
    const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect((8 + headerLength) % 8).toBe(0);
    const header = JSON.parse(Buffer.from(bytes.subarray(8, 8 + headerLength)).toString());
    expect(header.a).toEqual({ dtype: 'F32', shape: [2, 2, 1, 1], data_offsets: [0, 16] });
    expect(header.b).toEqual({ dtype: 'F32', shape: [2], data_offsets: [16, 24] });
    const decoded = decodeSafetensors(bytes);
    expect(decoded.metadata).toEqual({ format: 'x', round: '3' });
    expect(Array.from(decoded.tensors.a.data)).toEqual([0.5, 1.5, 2.5, 3.5]);
    expect(decoded.tensors.b.dims).toEqual([2]);
  });

  it('reads a file laid out as the reference Python library writes it (F16 and I32 too)', () => {
    // safetensors.numpy.save_file({"h": np.array([1, -2], np.float16), "i": np.array([7], np.int32)}): larger
    // alignment first, then by name; offsets relative to the data section.
    const data = new Uint8Array([...new Uint8Array(new Int32Array([7]).buffer), 0x00, 0x3c, 0x00, 0xc0]);
    const bytes = fileFrom({ i: { dtype: 'I32', shape: [1], data_offsets: [0, 4] }, h: { dtype: 'F16', shape: [2], data_offsets: [4, 8] } }, data);
    const decoded = decodeSafetensors(bytes);
    expect(Array.from(decoded.tensors.h.data)).toEqual([1, -2]);
    expect(Array.from(decoded.tensors.i.data)).toEqual([7]);
    expect(decoded.metadata).toEqual({});
  });

  const ok = { t: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } };
  const cases: [string, Uint8Array, RegExp][] = [
    ['too short', new Uint8Array(4), /too short/],
    ['header past the end', (() => { const b = fileFrom(ok, f32([1, 2])); new DataView(b.buffer).setBigUint64(0, 10_000n, true); return b; })(), /exceeds/],
    ['header not JSON', (() => { const b = fileFrom(ok, f32([1, 2])); b[8] = 0x41; return b; })(), /not valid JSON/],
    ['unknown dtype', fileFrom({ t: { dtype: 'F64', shape: [1], data_offsets: [0, 8] } }, f32([1, 2])), /dtype "F64"/],
    ['shape and bytes disagree', fileFrom({ t: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, f32([1, 2])), /needs 12/],
    ['offsets past the data', fileFrom({ t: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, f32([1, 2])), /past the 8-byte data section/],
    ['truncated data', fileFrom(ok, f32([1, 2])).subarray(0, 68), /past the 4-byte data section/],
    ['overlap', fileFrom({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, f32([1, 2])), /gap or overlap/],
    ['trailing bytes', fileFrom({ t: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, f32([1, 2])), /trailing/],
    ['negative dims', fileFrom({ t: { dtype: 'F32', shape: [-2], data_offsets: [0, 8] } }, f32([1, 2])), /invalid shape/],
    ['non-string metadata', fileFrom({ ...ok, __metadata__: { a: 1 } }, f32([1, 2])), /metadata "a"/],
  ];
  for (const [label, bytes, message] of cases) {
    it(`rejects a file with ${label}`, () => {
      expect(() => decodeSafetensors(bytes, 'upload')).toThrow(message);
    });
  }

  it('with copy: false gives aligned F32 tensors as views into the input, copies otherwise', () => {
    const bytes = encodeSafetensors({ a: { dims: [2], data: new Float32Array([1, 2]) }, b: { dims: [3], data: new Float32Array([3, 4, 5]) } });
    const viewed = decodeSafetensors(bytes, 'x', { copy: false });
    expect(viewed.tensors.a.data.buffer).toBe(bytes.buffer);
    expect(Array.from(viewed.tensors.b.data)).toEqual([3, 4, 5]);
    expect(decodeSafetensors(bytes).tensors.a.data.buffer).not.toBe(bytes.buffer);
    // The same file 2 bytes into a larger buffer: not 4-byte aligned there, so copied.
    const shifted = new Uint8Array(bytes.length + 2);
    shifted.set(bytes, 2);
    const copied = decodeSafetensors(shifted.subarray(2), 'x', { copy: false });
    expect(copied.tensors.b.data.buffer).not.toBe(shifted.buffer);
    expect(Array.from(copied.tensors.b.data)).toEqual([3, 4, 5]);
  });

  it('checks finiteness with copy: false too, and not with checkFinite: false', () => {
    expect(() => decodeSafetensors(fileFrom(ok, f32([1, NaN])), 'x', { copy: false })).toThrow(/tensor "t" holds a non-finite value \(NaN\) at index 1/);
    expect(Number.isNaN(decodeSafetensors(fileFrom(ok, f32([1, NaN])), 'x', { checkFinite: false }).tensors.t.data[1])).toBe(true);
  });

  it('rejects NaN and Infinity, naming the tensor', () => {
    expect(() => decodeSafetensors(fileFrom(ok, f32([1, NaN])))).toThrow(NonFiniteError);
    expect(() => decodeSafetensors(fileFrom(ok, f32([Infinity, 1])))).toThrow(/tensor "t" holds a non-finite value/);
  });
});
