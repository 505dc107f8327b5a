// safetensors read/write (https://github.com/huggingface/safetensors): 8-byte little-endian header
// length, a JSON header { name: { dtype, shape, data_offsets: [begin, end] }, __metadata__: {str: str} },
// then the raw little-endian tensor bytes. Only F32 is written; F32, F16 and I32 are read. Every load
// checks header length, JSON, dtypes, shapes, offsets (contiguous, in bounds, no overlap) and finiteness.

import { ShapeError, NonFiniteError, FussError } from '../errors.js';
import { float16ToFloat32 } from './float16.js';
import { indexOfNonFinite } from '../math/vectors.js';

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

/** Options of {@link decodeSafetensors}. */
export interface DecodeOptions {
  /** dtypes accepted (default F32, F16 and I32); a tensor of another is refused. */
  dtypes?: readonly string[];
  /** Longest header accepted, in bytes (default: 100 MiB). */
  maxHeaderBytes?: number;
  /**
   * false: F32 tensors whose bytes are 4-byte aligned in `bytes` come back as views into it, not copies
   * (the caller owns `bytes` and must not change or reuse it while the tensors live). Default true.
   */
  copy?: boolean;
  /** false: non-finite values are not looked for (the caller checks them itself). Default true. */
  checkFinite?: boolean;
}

/** A tensor's place in a safetensors file; offsets are relative to the data section. */
export interface TensorEntry {
  name: string;
  dtype: string;
  shape: number[];
  begin: number;
  end: number;
}

/** What a safetensors header says: where the data section starts, the metadata and the tensors (by offset). */
export interface SafetensorsLayout {
  dataStart: number;
  metadata: Record<string, string>;
  entries: TensorEntry[];
}

/** Bytes of the file needed before {@link parseSafetensorsHeader} can run: 8, then 8 + the header's length. */
export function safetensorsHeaderEnd(prefix: Uint8Array, fileLength: number, what = 'safetensors file', maxHeaderBytes = MAX_HEADER_BYTES): number {
  if (fileLength < 8) throw new SafetensorsError(`${what}: ${fileLength} bytes is too short for a safetensors header`);
  if (prefix.length < 8) return 8;
  const headerLength = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  if (headerLength > BigInt(Math.min(maxHeaderBytes, fileLength - 8))) {
    const bound = fileLength - 8 <= maxHeaderBytes ? `the ${fileLength}-byte file` : `the ${maxHeaderBytes}-byte limit`;
    throw new SafetensorsError(`${what}: header length ${headerLength} exceeds ${bound}`);
  }
  return 8 + Number(headerLength);
}

/**
 * Parses and validates the header of a `fileLength`-byte safetensors file from its first bytes
 * (`prefix` holds at least {@link safetensorsHeaderEnd} of them): JSON, dtypes, shapes, and offsets
 * that cover the data section exactly once. Entries come back sorted by offset. The values are not read.
 */
export function parseSafetensorsHeader(prefix: Uint8Array, fileLength: number, what = 'safetensors file', options: DecodeOptions = {}): SafetensorsLayout {
  const dtypes = options.dtypes ?? Object.keys(DTYPE_BYTES);
  const dataStart = safetensorsHeaderEnd(prefix, fileLength, what, options.maxHeaderBytes);
  if (prefix.length < dataStart) throw new RangeError(`${what}: ${dataStart} bytes are needed to read the header, ${prefix.length} given`);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(Buffer.from(prefix.buffer, prefix.byteOffset + 8, dataStart - 8).toString('utf8'));
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
  const dataLength = fileLength - dataStart;
  const entries: TensorEntry[] = [];
  for (const [name, value] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const info = value as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof info !== 'object' || info === null) throw new SafetensorsError(`${what}: entry ${shownName(name)} must be an object`);
    if (typeof info.dtype !== 'string' || !(info.dtype in DTYPE_BYTES) || !dtypes.includes(info.dtype)) {
      throw new SafetensorsError(`${what}: tensor ${shownName(name)} has dtype ${JSON.stringify(info.dtype).slice(0, 40)}; accepted here: ${dtypes.join(', ')}`);
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
  return { dataStart, metadata, entries };
}

/** Bytes per value of a dtype that {@link parseSafetensorsHeader} accepted. */
export function dtypeBytes(dtype: string): number {
  return DTYPE_BYTES[dtype];
}

/**
 * Throws NonFiniteError when values `[from, to)` of tensor `entry` hold a NaN or an infinity; `bytes`
 * is the whole file (values are read in place, aligned or not). I32 values are always finite.
 */
export function checkFiniteValues(bytes: Uint8Array, layout: SafetensorsLayout, entry: TensorEntry, from: number, to: number, what = 'safetensors file'): void {
  const start = bytes.byteOffset + layout.dataStart + entry.begin;
  let bad = -1;
  if (entry.dtype === 'F32') {
    // In place: as floats when aligned, else by their exponent bits (all set: NaN or an infinity).
    if (start % 4 === 0) {
      const found = indexOfNonFinite(new Float32Array(bytes.buffer, start + from * 4, to - from));
      if (found >= 0) bad = from + found;
    } else {
      const view = new DataView(bytes.buffer, start);
      for (let i = from; i < to; i++) {
        if ((view.getUint32(i * 4, true) & 0x7f800000) === 0x7f800000) {
          bad = i;
          break;
        }
      }
    }
  } else if (entry.dtype === 'F16') {
    const view = new DataView(bytes.buffer, start);
    for (let i = from; i < to; i++) {
      if ((view.getUint16(i * 2, true) & 0x7c00) === 0x7c00) {
        bad = i;
        break;
      }
    }
  }
  if (bad >= 0) {
    const view = new DataView(bytes.buffer, start);
    let value: number;
    if (entry.dtype === 'F32') value = view.getFloat32(bad * 4, true);
    else {
      const bits = view.getUint16(bad * 2, true);
      value = bits & 0x3ff ? Number.NaN : bits & 0x8000 ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY;
    }
    throw new NonFiniteError(`${what}: tensor ${shownName(entry.name)} holds a non-finite value (${value}) at index ${bad}`);
  }
}

/**
 * The tensors of a file whose header {@link parseSafetensorsHeader} has read, as float32, checked
 * finite (unless `checkFinite: false`). They are copies (aligned, detached from `bytes`), unless
 * `copy: false`: then float32 tensors that are 4-byte aligned in `bytes` are views into it, for a
 * caller that owns the bytes and keeps them unchanged (the aggregation, which reads each update once).
 */
export function readTensors(bytes: Uint8Array, layout: SafetensorsLayout, what = 'safetensors file', options: Pick<DecodeOptions, 'copy' | 'checkFinite'> = {}): Record<string, NamedTensor> {
  const { dataStart, entries } = layout;
  const tensors: Record<string, NamedTensor> = {};
  for (const e of entries) {
    const count = (e.end - e.begin) / DTYPE_BYTES[e.dtype];
    if (options.checkFinite !== false) checkFiniteValues(bytes, layout, e, 0, count, what);
    const offset = bytes.byteOffset + dataStart + e.begin;
    let data: Float32Array;
    if (e.dtype === 'F32' && options.copy === false && offset % 4 === 0) {
      data = new Float32Array(bytes.buffer, offset, count);
    } else {
      // Copy (Buffer.slice would be a view into a shared pool): aligned and detached from the input.
      const raw = new Uint8Array(bytes.subarray(dataStart + e.begin, dataStart + e.end));
      if (e.dtype === 'F32') data = new Float32Array(raw.buffer, 0, count);
      else if (e.dtype === 'F16') data = float16ToFloat32(new Uint16Array(raw.buffer, 0, count));
      else data = Float32Array.from(new Int32Array(raw.buffer, 0, count));
    }
    tensors[e.name] = { dims: e.shape, data };
  }
  return tensors;
}

/** Parses and validates a safetensors file; all tensors come back as float32. */
export function decodeSafetensors(bytes: Uint8Array, what = 'safetensors file', options: DecodeOptions = {}): SafetensorsFile {
  const layout = parseSafetensorsHeader(bytes, bytes.length, what, options);
  return { tensors: readTensors(bytes, layout, what, options), metadata: layout.metadata };
}
