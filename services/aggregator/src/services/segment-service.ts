// POST /segment: checks an image before any decoding (real format from its first bytes, pixel count
// from its header), resolves the federation's model, and hands the work to the worker pool
// (segmentation/worker-pool.ts). Nothing here decodes pixels or runs a model on the event loop.

import type { ServerLimits } from '../config.js';
import { ConflictError, PayloadTooLargeError } from '../errors.js';
import { FussError } from '@fuss/core';
import type { FederationsService } from './federations-service.js';
import { readImageHeader } from '../segmentation/image-header.js';
import type { SegmentOptions, SegmentPool } from '../segmentation/worker-pool.js';
import type { ClassesService } from './classes-service.js';

export function createSegmentService(deps: {
  pool?: SegmentPool;
  federations: Pick<FederationsService, 'get' | 'model' | 'latestVersion' | 'modelInfo'>;
  /** The federation's class names and colours, for JSON masks and overlays. */
  classes?: Pick<ClassesService, 'get'>;
  limits: Pick<ServerLimits, 'imagePixels' | 'segmentMaxSide' | 'jsonMaskPixels'>;
}) {
  const { limits } = deps;
  return {
    async segment(federationId: string, version: number | 'latest', image: Uint8Array, options: SegmentOptions) {
      const { format } = options;
      const federation = await deps.federations.get(federationId);
      const pool = deps.pool;
      if (!pool?.backbone) throw new ConflictError('this server was started without a backbone (fuss server --backbone ONNX); it cannot segment images', 'no-backbone');
      if (pool.backbone.sha256 !== federation.backbone.sha256 || pool.backbone.featureKey !== federation.backbone.featureKey) {
        throw new ConflictError(`federation ${federationId} uses backbone ${federation.backbone.id} (sha256 ${federation.backbone.sha256.slice(0, 12)}...), but this server runs ${pool.backbone.id} (${pool.backbone.sha256.slice(0, 12)}...)`, 'backbone-mismatch');
      }
      const header = readImageHeader(image);
      const pixels = header.width * header.height;
      if (pixels > limits.imagePixels) {
        throw new PayloadTooLargeError(`the image is ${header.width}x${header.height} (${(pixels / 1e6).toFixed(1)} MP); this server segments images of at most ${(limits.imagePixels / 1e6).toFixed(1)} MP (FUSS_IMAGE_MAX_PIXELS)`);
      }
      if (format === 'json' && pixels > limits.jsonMaskPixels) {
        throw new FussError(`a ${header.width}x${header.height} mask is too large for format=json (at most ${(limits.jsonMaskPixels / 1e6).toFixed(1)} MP); ask for format=png`, { status: 422, type: 'mask-too-large' });
      }
      const model = await deps.federations.modelInfo(federationId, version);
      const classes = format === 'png' ? undefined : await deps.classes?.get(federationId);
      const result = await pool.segment({
        image,
        ...options,
        classes,
        modelVersion: model.version,
        modelSha256: model.sha256,
        modelBytes: async () => (await deps.federations.model(federationId, model.version)).weights,
        maxSide: limits.segmentMaxSide,
        maxPixels: limits.imagePixels,
      });
      return result;
    },
  };
}

export type SegmentService = ReturnType<typeof createSegmentService>;
