// The format and size of an upload from its first bytes, before anything is decoded.

import { describe, expect, it } from 'vitest';
import sharp from 'sharp';
import { readImageHeader } from './image-header.js';

const solid = (width: number, height: number) => sharp({ create: { width, height, channels: 3, background: { r: 10, g: 200, b: 30 } } });

describe('readImageHeader', () => {
  it('reads the size of PNG and JPEG files (baseline and progressive, with EXIF) without decoding them', async () => {
    expect(readImageHeader(await solid(640, 480).png().toBuffer())).toEqual({ format: 'png', width: 640, height: 480 });
    expect(readImageHeader(await solid(17, 3001).jpeg().toBuffer())).toEqual({ format: 'jpeg', width: 17, height: 3001 });
    expect(readImageHeader(await solid(300, 200).jpeg({ progressive: true }).withMetadata({ orientation: 6 }).toBuffer())).toEqual({ format: 'jpeg', width: 300, height: 200 });
    // A 26 KB PNG can declare 3000 x 3000 pixels: the header says so before any pixel is decoded.
    const bomb = await solid(3000, 3000).png({ compressionLevel: 9 }).toBuffer();
    expect(bomb.length).toBeLessThan(64 * 1024);
    expect(readImageHeader(bomb)).toMatchObject({ width: 3000, height: 3000 });
  });

  it('refuses other formats with 415, whatever their content type, and damaged headers with 400', async () => {
    for (const format of ['gif', 'tiff', 'webp'] as const) {
      const bytes = await solid(8, 8)[format]().toBuffer();
      expect(() => readImageHeader(bytes), format).toThrow(expect.objectContaining({ status: 415 }));
    }
    expect(() => readImageHeader(Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"/>'))).toThrow(expect.objectContaining({ status: 415 }));
    expect(() => readImageHeader(Buffer.alloc(0))).toThrow(expect.objectContaining({ status: 415 }));
    const png = await solid(8, 8).png().toBuffer();
    expect(() => readImageHeader(png.subarray(0, 20))).toThrow(expect.objectContaining({ status: 400 }));
    const zero = Buffer.from(png);
    zero.writeUInt32BE(0, 16);
    expect(() => readImageHeader(zero)).toThrow(/declares a 0x8 image/);
    const jpeg = await solid(8, 8).jpeg().toBuffer();
    expect(() => readImageHeader(jpeg.subarray(0, 12))).toThrow(expect.objectContaining({ status: 400 }));
    // Garbage after the start-of-image marker.
    expect(() => readImageHeader(Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x01, 0x12, 0x34]))).toThrow(expect.objectContaining({ status: 400 }));
  });
});
