// safetensors read/write (https://github.com/huggingface/safetensors): 8-byte little-endian header
// length, a JSON header { name: { dtype, shape, data_offsets: [begin, end] }, __metadata__: {str: str} },
// then the raw little-endian tensor bytes. Only F32 is written; F32, F16 and I32 are read. Every load
// checks header length, JSON, dtypes, shapes, offsets (contiguous, in bounds, no overlap) and finiteness.

import { ShapeError, NonFiniteError, FussError } from '../errors.js';
import { float16ToFloat32 } from './float16.js';

/** A malformed safetensors file. */
export class SafetensorsError extends FussError {
  constructor(message: string) {
    super(message, { status: 400, type: 'bad-safetensors' });
  }
}

export interface NamedTensor {
  dims: number[];
  data: Float32Array;
}

export interface SafetensorsFile {
  tensors: Record<string, NamedTensor>;
  metadata: Record<string, string>;
}

/** Header JSON larger than this is refused (the format's own limit is 100 MB). */
const MAX_HEADER_BYTES = 100 * 1024 * 1024;

const DTYPE_BYTES: Record<string, number> = { F32: 4, F16: 2, I32: 4 };

/** A tensor or metadata name as messages show it: quoted, and cut after 80 characters (names come from the file). */
export function shownName(name: string): string {
  return JSON.stringify(name.length > 80 ? `${name.slice(0, 80)}...` : name);
}

/** Serialises float32 tensors (sorted by name, 8-byte aligned header) with string metadata. */
export function encodeSafetensors(tensors: Record<string, NamedTensor>, metadata: Record<string, string> = {}): Uint8Array {
  const names = Object.keys(tensors).sort();
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const name of names) {
    const t = tensors[name];
    const count = t.dims.reduce((a, b) => a * b, 1);
    if (count !== t.data.length) throw new ShapeError(`tensor ${name}: dims [${t.dims}] need ${count} values, data has ${t.data.length}`);
    header[name] = { dtype: 'F32', shape: t.dims, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8); // pad so data starts 8-byte aligned
  const headerBytes = Buffer.from(json, 'utf8');
  const out = new Uint8Array(8 + headerBytes.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let position = 8 + headerBytes.length;
  for (const name of names) {
    const data = tensors[name].data;
    out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), position);
    position += data.byteLength;
  }
  return out;
}

/** Parses and validates a safetensors file; all tensors come back as float32. */
export function decodeSafetensors(bytes: Uint8Array, what = 'safetensors file'): SafetensorsFile {
  if (bytes.length < 8) throw new SafetensorsError(`${what}: ${bytes.length} bytes is too short for a safetensors header`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = view.getBigUint64(0, true);
  if (headerLength > BigInt(Math.min(MAX_HEADER_BYTES, bytes.length - 8))) {
    throw new SafetensorsError(`${what}: header length ${headerLength} exceeds the ${bytes.length}-byte file`);
  }
  const dataStart = 8 + Number(headerLength);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset + 8, Number(headerLength)).toString('utf8'));
  } catch (err) {
    throw new SafetensorsError(`${what}: header is not valid JSON (${(err as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) throw new SafetensorsError(`${what}: header must be a JSON object`);
  const metadata: Record<string, string> = {};
  const rawMeta = header.__metadata__;
  if (rawMeta !== undefined) {
    if (typeof rawMeta !== 'object' || rawMeta === null || Array.isArray(rawMeta)) throw new SafetensorsError(`${what}: __metadata__ must be an object`);
    for (const [k, v] of Object.entries(rawMeta)) {
      if (typeof v !== 'string') throw new SafetensorsError(`${what}: metadata ${shownName(k)} must be a string`);
      metadata[k] = v;
    }
  }
  const dataLength = bytes.length - dataStart;
  const entries: { name: string; dtype: string; shape: number[]; begin: number; end: number }[] = [];
  for (const [name, value] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const info = value as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof info !== 'object' || info === null) throw new SafetensorsError(`${what}: entry ${shownName(name)} must be an object`);
    if (typeof info.dtype !== 'string' || !(info.dtype in DTYPE_BYTES)) {
      throw new SafetensorsError(`${what}: tensor ${shownName(name)} has dtype ${JSON.stringify(info.dtype)}; supported: F32, F16, I32`);
    }
    if (!Array.isArray(info.shape) || !info.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new SafetensorsError(`${what}: tensor ${shownName(name)} has an invalid shape`);
    }
    const offsets = info.data_offsets;
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) || offsets[0] > offsets[1]) {
      throw new SafetensorsError(`${what}: tensor ${shownName(name)} has invalid data_offsets`);
    }
    const count = (info.shape as number[]).reduce((a, b) => a * b, 1);
    if (offsets[1] - offsets[0] !== count * DTYPE_BYTES[info.dtype]) {
      throw new SafetensorsError(`${what}: tensor ${shownName(name)} spans ${offsets[1] - offsets[0]} bytes but shape [${info.shape}] of ${info.dtype} needs ${count * DTYPE_BYTES[info.dtype]}`);
    }
    if (offsets[1] > dataLength) throw new SafetensorsError(`${what}: tensor ${shownName(name)} ends at byte ${offsets[1]}, past the ${dataLength}-byte data section`);
    entries.push({ name, dtype: info.dtype, shape: info.shape as number[], begin: offsets[0], end: offsets[1] });
  }
  // The data section must be covered exactly once, without gaps or overlaps.
  entries.sort((a, b) => a.begin - b.begin);
  let expected = 0;
  for (const e of entries) {
    if (e.begin !== expected) throw new SafetensorsError(`${what}: tensor ${shownName(e.name)} starts at byte ${e.begin}, expected ${expected} (gap or overlap)`);
    expected = e.end;
  }
  if (expected !== dataLength) throw new SafetensorsError(`${what}: data section has ${dataLength - expected} trailing bytes`);

  const tensors: Record<string, NamedTensor> = {};
  for (const e of entries) {
    // Copy (Buffer.slice would be a view into a shared pool): aligned and detached from the input.
    const raw = new Uint8Array(bytes.subarray(dataStart + e.begin, dataStart + e.end));
    let data: Float32Array;
    if (e.dtype === 'F32') data = new Float32Array(raw.buffer, 0, raw.length / 4);
    else if (e.dtype === 'F16') data = float16ToFloat32(new Uint16Array(raw.buffer, 0, raw.length / 2));
    else data = Float32Array.from(new Int32Array(raw.buffer, 0, raw.length / 4));
    for (let i = 0; i < data.length; i++) {
      if (!Number.isFinite(data[i])) throw new NonFiniteError(`${what}: tensor ${shownName(e.name)} holds a non-finite value (${data[i]}) at index ${i}`);
    }
    tensors[e.name] = { dims: e.shape, data };
  }
  return { tensors, metadata };
}
