// On-disk cache of backbone features, keyed by image content hash (with the view for an augmented
// view of the image, features/views.ts) and the backbone's feature configuration key. Values are float16. A truncated or corrupt entry is detected (length and CRC-32
// checks) and treated as a miss, so the caller recomputes it.
//
// Entry layout: "FUSSFEAT" | u32 LE header length | JSON header | float16 data (little-endian).

import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { createHash, randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { join } from 'node:path';
import { float16ToFloat32, float32ToFloat16 } from './float16.js';
import type { FeatureMap } from '../backbone/backbone.js';

const MAGIC = 'FUSSFEAT';
const FORMAT_VERSION = 1;

interface EntryHeader {
  version: number;
  dtype: 'float16';
  dims: [number, number, number];
  configKey: string;
  imageSha256: string;
  crc32: number;
}

/** sha256 (hex) of image bytes, the cache's content key. */
export function imageContentHash(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export type CacheLookup = { status: 'hit'; features: FeatureMap } | { status: 'miss' } | { status: 'corrupt'; reason: string };

/** A checked cache entry still in float16: convert it whole ({@link halfMapToFeatureMap}), or only the cells needed. */
export interface HalfFeatureMap {
  channels: number;
  height: number;
  width: number;
  /** [channels, height, width] IEEE half bits */
  half: Uint16Array;
}

export type HalfCacheLookup = { status: 'hit'; features: HalfFeatureMap } | { status: 'miss' } | { status: 'corrupt'; reason: string };

/** The float32 values of a float16 map (exact). */
export function halfMapToFeatureMap(map: HalfFeatureMap): FeatureMap {
  return { channels: map.channels, height: map.height, width: map.width, data: float16ToFloat32(map.half) };
}

export class FeatureCache {
  /**
   * @param root cache folder (created on first write)
   * @param configKey `featureConfigKey(descriptor)`: entries of other backbones or settings never match
   */
  constructor(
    readonly root: string,
    readonly configKey: string,
  ) {}

  /** `imageSha256`: an image's sha256, or the key of one of its views (`viewCacheKey`), here and below. */
  pathFor(imageSha256: string): string {
    return join(this.root, this.configKey, imageSha256.slice(0, 2), `${imageSha256}.f16`);
  }

  /** Reads an entry; a missing file is a miss, a damaged one is reported as corrupt (never thrown). */
  async get(imageSha256: string): Promise<CacheLookup> {
    const lookup = await this.getHalf(imageSha256);
    return lookup.status === 'hit' ? { status: 'hit', features: halfMapToFeatureMap(lookup.features) } : lookup;
  }

  /** Reads and checks an entry like {@link get}, leaving its values in float16. */
  async getHalf(imageSha256: string): Promise<HalfCacheLookup> {
    let bytes: Buffer;
    try {
      bytes = await readFile(this.pathFor(imageSha256));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { status: 'miss' };
      return { status: 'corrupt', reason: (err as Error).message };
    }
    try {
      return { status: 'hit', features: decodeEntry(bytes, this.configKey, imageSha256) };
    } catch (err) {
      return { status: 'corrupt', reason: (err as Error).message };
    }
  }

  /**
   * Writes an entry atomically (temporary file + rename), so readers never see half an entry. A map
   * already rounded to float16 (`features.half`) is written as it is.
   */
  async put(imageSha256: string, features: FeatureMap): Promise<void> {
    const path = this.pathFor(imageSha256);
    await mkdir(join(this.root, this.configKey, imageSha256.slice(0, 2)), { recursive: true });
    const temporary = `${path}.${randomBytes(6).toString('hex')}.tmp`;
    try {
      const file = await open(temporary, 'w');
      try {
        await file.writev(encodeEntry(features, this.configKey, imageSha256));
      } finally {
        await file.close();
      }
      await rename(temporary, path);
    } catch (err) {
      await rm(temporary, { force: true });
      throw err;
    }
  }
}

/** The entry as buffers to write in order (prefix and header, then the data without a copy). */
function encodeEntry(features: FeatureMap, configKey: string, imageSha256: string): Uint8Array[] {
  const half = features.half ?? float32ToFloat16(features.data);
  const data = new Uint8Array(half.buffer, half.byteOffset, half.byteLength);
  const header: EntryHeader = {
    version: FORMAT_VERSION,
    dtype: 'float16',
    dims: [features.channels, features.height, features.width],
    configKey,
    imageSha256,
    crc32: crc32(data),
  };
  // Padded with spaces (JSON allows them) so the data starts at a multiple of 4 and reads as a view.
  const text = JSON.stringify(header);
  const json = Buffer.from(text.padEnd(text.length + ((4 - ((12 + Buffer.byteLength(text)) % 4)) % 4)), 'utf8');
  const prefix = Buffer.alloc(12);
  prefix.write(MAGIC, 0, 'latin1');
  prefix.writeUInt32LE(json.length, 8);
  return [prefix, json, data];
}

function decodeEntry(bytes: Buffer, configKey: string, imageSha256: string): HalfFeatureMap {
  if (bytes.length < 12 || bytes.toString('latin1', 0, 8) !== MAGIC) throw new Error('bad magic');
  const headerLength = bytes.readUInt32LE(8);
  if (12 + headerLength > bytes.length) throw new Error('truncated header');
  const header = JSON.parse(bytes.toString('utf8', 12, 12 + headerLength)) as EntryHeader;
  if (header.version !== FORMAT_VERSION || header.dtype !== 'float16') throw new Error(`unsupported entry version ${header.version}`);
  if (header.configKey !== configKey || header.imageSha256 !== imageSha256) throw new Error('entry belongs to another image or backbone');
  const [channels, height, width] = header.dims;
  const expected = channels * height * width * 2;
  const dataStart = 12 + headerLength;
  if (bytes.length - dataStart !== expected) throw new Error(`data is ${bytes.length - dataStart} bytes, expected ${expected}`);
  // A view where the data is aligned for a Uint16Array (entries written since the header was padded), else a copy.
  const aligned = (bytes.byteOffset + dataStart) % 2 === 0;
  const data = aligned ? bytes.subarray(dataStart) : new Uint8Array(bytes.subarray(dataStart));
  if (crc32(data) !== header.crc32) throw new Error('checksum mismatch');
  return { channels, height, width, half: new Uint16Array(data.buffer, data.byteOffset, data.length / 2) };
}
