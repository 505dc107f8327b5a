// Image in, mask out (DESIGN "Evaluation"), as a /segment worker runs it: the image is resized so its
// longest side is at most `maxSide` before the backbone; per-cell centroid scores are upsampled
// bilinearly to that working size; the mask is brought back to the image's own size with nearest
// neighbours. Memory is bounded by the working size, not by the image: large images never exist as
// float tensors, and full-size outputs are produced by libvips (sharp), which streams.

import sharp from 'sharp';
import {
  assignPixels, classColour, headCodeFunction, inputSizeFor, normalizeRows, FussError, DataError, type Backbone, type SegmentationModel, type TrainingEngine,
} from '@fuss/core';

export type SegmentFormat = 'png' | 'json' | 'overlay';

export interface SegmentJob {
  image: Uint8Array;
  format: SegmentFormat;
  modelVersion: number;
  /** Longest side of the working image, pixels. */
  maxSide: number;
  /** Largest image accepted, pixels (also enforced by sharp while decoding). */
  maxPixels: number;
}

export interface SegmentOutput {
  contentType: string;
  headers: Record<string, string>;
  /** PNG bytes, or the JSON text of format=json. */
  body: Uint8Array | string;
}

/** The working size: the image scaled down (never up) so its longest side is at most `maxSide`. */
export function workingSize(width: number, height: number, maxSide: number): { width: number; height: number } {
  const scale = Math.min(1, maxSide / Math.max(width, height));
  return { width: Math.max(1, Math.round(width * scale)), height: Math.max(1, Math.round(height * scale)) };
}

function decodeFailure(err: unknown): never {
  throw new DataError(`cannot decode the uploaded image: ${(err as Error).message.split('\n')[0]}`, { cause: err });
}

export async function segmentImage(backbone: Backbone, engine: TrainingEngine, model: SegmentationModel, job: SegmentJob): Promise<SegmentOutput> {
  const input = () => sharp(job.image, { limitInputPixels: job.maxPixels, failOn: 'error' });
  const meta = await input().metadata().catch(decodeFailure);
  if (!meta.width || !meta.height) throw new DataError('the uploaded image has no width or height');
  // EXIF orientations 5-8 turn the image by 90 degrees: the mask follows the image as it is shown.
  const turned = (meta.orientation ?? 1) >= 5;
  const width = turned ? meta.height : meta.width;
  const height = turned ? meta.width : meta.height;
  const work = workingSize(width, height, job.maxSide);
  const target = inputSizeFor(backbone.descriptor.inputSize, work.width, work.height);
  const { data, info } = await input().rotate().removeAlpha().toColourspace('srgb')
    .resize(target.width, target.height, { fit: 'fill', kernel: 'linear' })
    .raw().toBuffer({ resolveWithObject: true }).catch(decodeFailure);
  if (info.channels !== 3) throw new DataError(`the uploaded image decoded to ${info.channels} channels, expected 3`);
  const features = await backbone.extractDecoded({ width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) });
  const codes = await headCodeFunction(engine, model.head, model.channels, model.codeDim)(features);
  const ids = assignPixels(codes, normalizeRows(model.centroids, model.k, model.codeDim), model.k, work.width, work.height);
  const wide = model.k > 256;
  const small = wide ? Uint16Array.from(ids) : Uint8Array.from(ids);
  const headers = { 'x-model-version': String(job.modelVersion), 'x-working-size': `${work.width}x${work.height}` };
  const sameSize = work.width === width && work.height === height;
  const mask = () => {
    const pipeline = sharp(small, { raw: { width: work.width, height: work.height, channels: 1 } });
    return sameSize ? pipeline : pipeline.resize(width, height, { fit: 'fill', kernel: 'nearest' });
  };

  if (job.format === 'png') {
    const png = await mask().toColourspace(wide ? 'grey16' : 'b-w').png({ compressionLevel: 3 }).toBuffer();
    return { contentType: 'image/png', headers, body: png };
  }
  if (job.format === 'json') {
    const full = sameSize ? ids : await mask().toColourspace(wide ? 'grey16' : 'b-w').raw({ depth: wide ? 'ushort' : 'uchar' }).toBuffer();
    const values = full instanceof Int32Array ? full : wide ? new Uint16Array(full.buffer, full.byteOffset, full.byteLength / 2) : full;
    // Written by hand: JSON.stringify of a several-million-element array needs far more memory.
    const text = `{"width":${width},"height":${height},"k":${model.k},"modelVersion":${job.modelVersion},"mask":[${values.join(',')}]}`;
    return { contentType: 'application/json', headers, body: text };
  }
  if (job.format === 'overlay') {
    // Class colours at 55% opacity over the image, composed by libvips at full size.
    const colours = new Uint8Array(work.width * work.height * 4);
    const palette = Array.from({ length: model.k }, (_, i) => classColour(i));
    for (let p = 0; p < ids.length; p++) {
      const colour = palette[ids[p]];
      colours[p * 4] = colour[0];
      colours[p * 4 + 1] = colour[1];
      colours[p * 4 + 2] = colour[2];
      colours[p * 4 + 3] = 140;
    }
    let layer = sharp(colours, { raw: { width: work.width, height: work.height, channels: 4 } });
    if (!sameSize) layer = layer.resize(width, height, { fit: 'fill', kernel: 'nearest' });
    const layerPng = await layer.png({ compressionLevel: 1 }).toBuffer();
    const png = await input().rotate().removeAlpha().toColourspace('srgb')
      .composite([{ input: layerPng, blend: 'over', limitInputPixels: job.maxPixels }])
      .png({ compressionLevel: 3 }).toBuffer().catch(decodeFailure);
    return { contentType: 'image/png', headers, body: png };
  }
  throw new FussError(`unknown format ${String(job.format)}`, { status: 400, type: 'validation' });
}
