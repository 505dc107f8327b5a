// The computation of a round's new global model from the bytes of its updates, and of a federation's
// initial model: pure work with no database, run in the model worker thread (model-worker.ts) so that
// decoding, summing and encoding models of up to FUSS_UPDATE_LIMIT bytes never hold the event loop.
// The arithmetic is the strategy's own (aggregation-steps.ts in @fuss/core, the simulator's too): it
// asks for one update at a time, so memory holds one update plus every participant's centroids
// (except for the coordinate-wise robust rules and Krum, which need every update at once).

import {
  createRng, createStrategy, decodeModel, decodeOptimizerState, encodeModel, encodeOptimizerState, headParamLength, HEAD_PARAM_NAMES, initCentroids, initHead, parseRobustRule,
  parseServerOptimizer, runAggregationAsync, sha256Hex, type ClientUpdate, type HeadParamName, type ServerOptimizerState,
} from '@fuss/core';

export interface ModelShape {
  channels: number;
  codeDim: number;
  k: number;
  backbone: { id: string; sha256: string; featureKey: string };
}

export interface RoundModelSpec extends ModelShape {
  strategy: string;
  /** Robust rule (robust.ts text form). */
  robust: string;
  /** Server optimiser (server-optimizer.ts text form); `none` without. */
  serverOptimizer: string;
  modules: { weighted: boolean; head: boolean; centroids: boolean };
  /** Seed of the strategy's randomness in this round. */
  seed: number;
  round: number;
  /** Version the new model gets. */
  version: number;
  /** The round's updates in canonical (client id) order. */
  updates: { clientId: string; samples: number }[];
}

export interface ComputedModel {
  bytes: Uint8Array;
  sha256: string;
  metrics: Record<string, unknown>;
  /** With a server optimiser: its state after this round (stored next to the new model). */
  serverState?: { bytes: Uint8Array; sha256: string };
}

/** Values of each head tensor (the shape of a server optimiser's state). */
function headLengths(spec: ModelShape): Record<HeadParamName, number> {
  return Object.fromEntries(HEAD_PARAM_NAMES.map((name) => [name, headParamLength(name, spec.channels, spec.codeDim)])) as Record<HeadParamName, number>;
}

/** The server optimiser's state stored with the previous version; undefined when none (or another optimiser's). */
function decodeServerState(bytes: Uint8Array | undefined, spec: RoundModelSpec): ServerOptimizerState | undefined {
  if (!bytes) return undefined;
  const groups = decodeOptimizerState(bytes, spec.serverOptimizer, { head: headLengths(spec) }, 'server optimiser state');
  const head = groups?.head;
  return head ? { step: head.step, m: head.m as Record<HeadParamName, Float32Array>, ...(head.v ? { v: head.v as Record<HeadParamName, Float32Array> } : {}) } : undefined;
}

/**
 * The new global model of a round. `load(i)` gives the bytes of update i (in `spec.updates` order);
 * `previous` the bytes of the model the round started from, `previousState` the server optimiser's
 * state stored with it (none in the first round).
 */
export async function computeRoundModel(
  spec: RoundModelSpec,
  previousBytes: Uint8Array,
  load: (index: number) => Promise<Uint8Array>,
  previousState?: Uint8Array,
): Promise<ComputedModel> {
  const expect = { backboneSha256: spec.backbone.sha256, featureKey: spec.backbone.featureKey, channels: spec.channels, codeDim: spec.codeDim, k: spec.k };
  const previous = decodeModel(previousBytes, expect, 'global model');
  const strategy = createStrategy(spec.strategy);
  const steps = strategy.steps(spec.updates, {
    k: spec.k,
    codeDim: spec.codeDim,
    channels: spec.channels,
    seed: spec.seed,
    modules: spec.modules,
    previous: { head: previous.head, centroids: previous.centroids },
    backboneSha256: spec.backbone.sha256,
    featureKey: spec.backbone.featureKey,
    robust: parseRobustRule(spec.robust),
    serverOptimizer: parseServerOptimizer(spec.serverOptimizer),
    serverState: decodeServerState(previousState, spec),
  });
  const result = await runAggregationAsync(steps, async (index): Promise<ClientUpdate> => {
    // Views into the bytes (no copy): they are this update's own and are read once. Finiteness is the
    // steps' boundary check (fused into their first pass, from the delta norms), not decoded twice.
    const update = decodeModel(await load(index), expect, 'update', { copy: false, checkFinite: false });
    const entry = spec.updates[index];
    // The centroids are kept for the whole round (FedCC pools them): a copy of their own, so they do not
    // hold the update's bytes alive.
    return { clientId: entry.clientId, head: update.head, centroids: update.centroids.slice(), samples: entry.samples, backboneSha256: update.backbone.sha256, featureKey: update.backbone.featureKey };
  });
  const bytes = encodeModel({
    head: result.head, centroids: result.centroids, channels: spec.channels, codeDim: spec.codeDim, k: spec.k, backbone: spec.backbone,
    info: { strategy: spec.strategy, robust: spec.robust, ...(spec.serverOptimizer === 'none' ? {} : { serverOptimizer: spec.serverOptimizer }) }, round: spec.round, version: spec.version,
  });
  const stateBytes = result.serverState ? encodeOptimizerState(spec.serverOptimizer, { head: result.serverState }) : undefined;
  return {
    bytes,
    sha256: sha256Hex(bytes),
    ...(stateBytes ? { serverState: { bytes: stateBytes, sha256: sha256Hex(stateBytes) } } : {}),
    // details.permutation[id]: the merged centroid that became class id `id` (ids stay stable across versions).
    metrics: { updates: spec.updates.length, samples: spec.updates.reduce((s, u) => s + u.samples, 0), strategy: spec.strategy, permutation: result.details.permutation, aggregation: result.details },
  };
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
