// POST /segment: image in, mask out, with a federation's global model: backbone features -> head ->
// nearest centroid per cell -> scores upsampled to the image size (DESIGN "Evaluation").

import sharp from 'sharp';
import {
  assignPixels, classColour, decodeModel, decodeRgb, featureConfigKey, headCodeFunction, normalizeRows, readImageSize,
  type Backbone, type SegmentationModel, type TrainingEngine,
} from '@fuss/core';
import { ConflictError } from '../errors.js';
import type { FederationsService } from './federations-service.js';

export type SegmentFormat = 'png' | 'json' | 'overlay';

const MODEL_CACHE_SIZE = 8;

export function createSegmentService(deps: { backbone?: Backbone; engine?: TrainingEngine; federations: Pick<FederationsService, 'get' | 'model' | 'latestVersion'> }) {
  const models = new Map<string, SegmentationModel>();

  async function modelFor(federationId: string, version: number | 'latest') {
    const federation = await deps.federations.get(federationId);
    // Resolve the version first; the weights are read from the database only on a cache miss.
    const resolved = version === 'latest' ? await deps.federations.latestVersion(federationId) : version;
    const key = `${federationId}:${resolved}`;
    let model = models.get(key);
    if (!model) {
      const stored = await deps.federations.model(federationId, resolved);
      model = decodeModel(stored.weights, { backboneSha256: federation.backbone.sha256 }, `model ${stored.version}`);
      models.set(key, model);
      if (models.size > MODEL_CACHE_SIZE) models.delete(models.keys().next().value!);
    }
    return { federation, model, version: resolved };
  }

  return {
    async segment(federationId: string, version: number | 'latest', image: Uint8Array, format: SegmentFormat) {
      const { backbone, engine } = deps;
      const { federation, model, version: used } = await modelFor(federationId, version);
      if (!backbone || !engine) throw new ConflictError('this server was started without a backbone (fuss server --backbone ONNX); it cannot segment images', 'no-backbone');
      if (backbone.descriptor.sha256 !== federation.backbone.sha256 || featureConfigKey(backbone.descriptor) !== federation.backbone.featureKey) {
        throw new ConflictError(`federation ${federationId} uses backbone ${federation.backbone.id} (sha256 ${federation.backbone.sha256.slice(0, 12)}...), but this server runs ${backbone.descriptor.id} (${backbone.descriptor.sha256.slice(0, 12)}...)`, 'backbone-mismatch');
      }
      const size = await readImageSize(image, 'the uploaded image');
      const features = await backbone.extract(image, 'the uploaded image');
      const codes = await headCodeFunction(engine, model.head, model.channels, model.codeDim)(features);
      const mask = assignPixels(codes, normalizeRows(model.centroids, model.k, model.codeDim), model.k, size.width, size.height);
      const headers = { 'x-model-version': String(used) };
      if (format === 'json') {
        return { contentType: 'application/json', headers, body: { width: size.width, height: size.height, k: model.k, modelVersion: used, mask: Array.from(mask) } };
      }
      if (format === 'png') {
        const ids = Uint8Array.from(mask);
        const png = await sharp(ids, { raw: { width: size.width, height: size.height, channels: 1 } }).toColourspace('b-w').png().toBuffer();
        return { contentType: 'image/png', headers, body: png };
      }
      const rgb = await decodeRgb(image, { name: 'the uploaded image' });
      const out = Buffer.alloc(rgb.data.length);
      const palette = Array.from({ length: model.k }, (_, i) => classColour(i));
      for (let p = 0; p < mask.length; p++) {
        const colour = palette[mask[p]];
        for (let c = 0; c < 3; c++) out[p * 3 + c] = Math.round(0.45 * rgb.data[p * 3 + c] + 0.55 * colour[c]);
      }
      const png = await sharp(out, { raw: { width: rgb.width, height: rgb.height, channels: 3 } }).png().toBuffer();
      return { contentType: 'image/png', headers, body: png };
    },
  };
}

export type SegmentService = ReturnType<typeof createSegmentService>;
