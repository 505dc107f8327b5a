// What an uploaded image really is, from its first bytes: JPEG or PNG (anything else is refused,
// whatever its content type says), and its width and height read from the header, so a pixel limit is
// checked before anything is decoded.

import { FussError } from '@fuss/core';
import { UnsupportedMediaTypeError } from '../errors.js';

export interface ImageHeader {
  format: 'jpeg' | 'png';
  width: number;
  height: number;
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

class BadImageError extends FussError {
  constructor(message: string) {
    super(message, { status: 400, type: 'bad-image' });
  }
}

/** Format and size of a JPEG or PNG file; 415 for other formats, 400 for a damaged header. */
export function readImageHeader(bytes: Uint8Array): ImageHeader {
  if (bytes.length >= 8 && PNG_SIGNATURE.every((b, i) => bytes[i] === b)) return pngHeader(bytes);
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return jpegHeader(bytes);
  throw new UnsupportedMediaTypeError('the image must be a JPEG or PNG file (its first bytes say it is neither)');
}

function pngHeader(bytes: Uint8Array): ImageHeader {
  // Signature, then the IHDR chunk: length (4), "IHDR", width (4), height (4), all big-endian.
  if (bytes.length < 24 || String.fromCharCode(...bytes.subarray(12, 16)) !== 'IHDR') throw new BadImageError('the PNG file has no IHDR header');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return checked({ format: 'png', width: view.getUint32(16), height: view.getUint32(20) });
}

function jpegHeader(bytes: Uint8Array): ImageHeader {
  // Walk the marker segments after SOI up to the first start-of-frame (SOF0..SOF15 except DHT, JPG
  // and DAC), whose payload is precision (1), height (2), width (2).
  let at = 2;
  while (at + 4 <= bytes.length) {
    if (bytes[at] !== 0xff) throw new BadImageError('the JPEG file has a damaged header');
    const marker = bytes[at + 1];
    if (marker === 0xff) {
      at++; // fill byte
      continue;
    }
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      at += 2; // markers without a length
      continue;
    }
    if (marker === 0xd9 || marker === 0xda) break; // end of image or start of scan before any frame
    const length = (bytes[at + 2] << 8) | bytes[at + 3];
    if (length < 2) throw new BadImageError('the JPEG file has a damaged header');
    const isFrame = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
    if (isFrame) {
      if (at + 9 > bytes.length) break;
      return checked({ format: 'jpeg', height: (bytes[at + 5] << 8) | bytes[at + 6], width: (bytes[at + 7] << 8) | bytes[at + 8] });
    }
    at += 2 + length;
  }
  throw new BadImageError('the JPEG file has no frame header (truncated or damaged)');
}

function checked(header: ImageHeader): ImageHeader {
  if (header.width < 1 || header.height < 1) throw new BadImageError(`the ${header.format.toUpperCase()} header declares a ${header.width}x${header.height} image`);
  return header;
}
