// The computation of a round's new global model from the bytes of its updates, and of a federation's
// initial model: pure work with no database, run in the model worker thread (model-worker.ts) so that
// decoding, summing and encoding models of up to FUSS_UPDATE_LIMIT bytes never hold the event loop.
// Heads are summed update by update (memory independent of the number of participants); centroid
// mergers receive only the centroids.

import {
  createRng, createStrategy, decodeModel, encodeModel, initCentroids, initHead, sha256Hex, WeightedSumAccumulator,
  HEAD_PARAM_NAMES, type ClientUpdate, type HeadParams,
} from '@fuss/core';

export interface ModelShape {
  channels: number;
  codeDim: number;
  k: number;
  backbone: { id: string; sha256: string; featureKey: string };
}

export interface RoundModelSpec extends ModelShape {
  strategy: string;
  modules: { weighted: boolean; head: boolean; centroids: boolean };
  /** Seed of the strategy's randomness in this round. */
  seed: number;
  round: number;
  /** Version the new model gets. */
  version: number;
  /** The round's updates in canonical (client id) order, with their module W weights. */
  updates: { clientId: string; samples: number; weight: number }[];
}

export interface ComputedModel {
  bytes: Uint8Array;
  sha256: string;
  metrics: Record<string, unknown>;
}

/**
 * The new global model of a round. `load(i)` gives the bytes of update i (in `spec.updates` order);
 * `previous` the bytes of the model the round started from.
 */
export async function computeRoundModel(spec: RoundModelSpec, previousBytes: Uint8Array, load: (index: number) => Promise<Uint8Array>): Promise<ComputedModel> {
  const expect = { backboneSha256: spec.backbone.sha256, featureKey: spec.backbone.featureKey, channels: spec.channels, codeDim: spec.codeDim, k: spec.k };
  const previous = decodeModel(previousBytes, expect, 'global model');
  const sums = WeightedSumAccumulator.forModel(spec.channels, spec.codeDim, spec.k);
  const centroidUpdates: ClientUpdate[] = [];
  for (const [i, entry] of spec.updates.entries()) {
    const update = decodeModel(await load(i), expect, 'update');
    sums.add({ ...update.head, centroids: update.centroids }, entry.weight);
    // Centroid mergers see only centroids; the head slot holds the shared previous head (no copy per update).
    centroidUpdates.push({ clientId: entry.clientId, head: previous.head, centroids: update.centroids, samples: entry.samples, backboneSha256: spec.backbone.sha256, featureKey: spec.backbone.featureKey });
  }
  const summed = sums.result();
  const merged = createStrategy(spec.strategy).aggregate(centroidUpdates, {
    k: spec.k,
    codeDim: spec.codeDim,
    channels: spec.channels,
    seed: spec.seed,
    modules: { head: false, centroids: spec.modules.centroids, weighted: spec.modules.weighted },
    previous: { head: previous.head, centroids: previous.centroids },
    backboneSha256: spec.backbone.sha256,
    featureKey: spec.backbone.featureKey,
  });
  const head: HeadParams = spec.modules.head ? (Object.fromEntries(HEAD_PARAM_NAMES.map((name) => [name, summed[name]])) as unknown as HeadParams) : previous.head;
  const bytes = encodeModel({
    head, centroids: merged.centroids, channels: spec.channels, codeDim: spec.codeDim, k: spec.k, backbone: spec.backbone,
    info: { strategy: spec.strategy }, round: spec.round, version: spec.version,
  });
  return {
    bytes,
    sha256: sha256Hex(bytes),
    // permutation[id]: the merged centroid that became class id `id` (ids stay stable across versions).
    metrics: { updates: spec.updates.length, samples: spec.updates.reduce((s, u) => s + u.samples, 0), strategy: spec.strategy, permutation: merged.details.permutation },
  };
}

/** Checks an uploaded update (shapes, dtypes, finiteness, backbone) and hashes it; throws FussErrors. */
export function checkUpdate(bytes: Uint8Array, shape: ModelShape): { sha256: string } {
  decodeModel(bytes, { backboneSha256: shape.backbone.sha256, featureKey: shape.backbone.featureKey, channels: shape.channels, codeDim: shape.codeDim, k: shape.k }, 'update');
  return { sha256: sha256Hex(bytes) };
}

/** A federation's seeded initial model (version 0). */
export function computeInitialModel(shape: ModelShape, seed: number): { bytes: Uint8Array; sha256: string } {
  const rng = createRng(seed);
  const bytes = encodeModel({
    head: initHead({ channels: shape.channels, codeDim: shape.codeDim }, rng),
    centroids: initCentroids(shape.k, shape.codeDim, rng),
    ...shape,
    round: 0,
    version: 0,
    info: { initial: true, seed },
  });
  return { bytes, sha256: sha256Hex(bytes) };
}
