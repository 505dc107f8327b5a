// One round's aggregation as a sequence of steps that asks for the updates one at a time: a generator
// that yields the index of the update it needs next and receives it back. The simulator answers from
// memory (runAggregation); the server answers from its blob store in a worker thread
// (runAggregationAsync), so both run the same arithmetic and the server holds one update at a time
// (two passes over the updates only when a `clip` bound applies; all of them only for the
// coordinate-wise rules and Krum, which need every update at once).

import { HEAD_PARAM_NAMES, type HeadParams } from '../engines/engine.js';
import { cloneHead } from '../head/head-init.js';
import { ConfigError, ShapeError } from '../errors.js';
import { createRng } from '../math/rng.js';
import { AggregationError } from './aggregation-error.js';
import { alignToReference } from './centroid-mergers.js';
import { keepCentroidIds } from './stable-ids.js';
import {
  capSampleCounts, clipFactors, coordinateMedian, coordinateTrimmedMean, formatRobustRule, krumAttackers, krumSelect, shrinkTowards, squaredDistance,
  trimCount, type RobustRule,
} from './robust.js';
import { applyServerOptimizer, formatServerOptimizer, type ServerOptimizerState } from './server-optimizer.js';
import type { AggregationContext, AggregationResult, CentroidMerger } from './strategy.js';
import { checkUpdateFinite, headParamLength, validateUpdate, type ClientUpdate } from './update.js';
import { WeightedSumAccumulator } from './weighted-mean.js';
import { clientWeights } from './weights.js';

/** What a round knows about an update before reading it. Entries come in canonical (client id) order. */
export interface RoundEntry {
  clientId: string;
  /** The sample count the participant reported. */
  samples: number;
}

/** The parts of a strategy the steps compose (see composeStrategy). */
export interface MergeParts {
  name: string;
  mergeCentroids: CentroidMerger;
  /** `mean`: centroids averaged per index (FedAvg, aligned FedAvg); `pool`: clustered as a pool (FedCC). */
  centroidMerge: 'mean' | 'pool';
}

/** The steps of a round: yields the index of the next update wanted, receives that update, returns the result. */
export type AggregationSteps = Generator<number, AggregationResult, ClientUpdate>;

export function runAggregation(steps: AggregationSteps, load: (index: number) => ClientUpdate): AggregationResult {
  let step = steps.next();
  while (!step.done) step = steps.next(load(step.value));
  return step.value;
}

export async function runAggregationAsync(steps: AggregationSteps, load: (index: number) => Promise<ClientUpdate>): Promise<AggregationResult> {
  let step = steps.next();
  while (!step.done) step = steps.next(await load(step.value));
  return step.value;
}

function headDistance(a: HeadParams, b: HeadParams): number {
  let sum = 0;
  for (const name of HEAD_PARAM_NAMES) sum += squaredDistance(a[name], b[name]);
  return sum;
}

/** A client's centroids with its rows permuted onto the previous global rows (Hungarian). */
function aligned(centroids: Float32Array, reference: Float32Array, k: number, dim: number): Float32Array {
  const alignment = alignToReference(centroids, reference, k, dim);
  const out = new Float32Array(k * dim);
  for (let i = 0; i < k; i++) out.set(centroids.subarray(i * dim, i * dim + dim), alignment[i] * dim);
  return out;
}

/**
 * The aggregation of one round (DESIGN section 3.2 with the robust layer of robust.ts): checks each
 * update as it arrives (`validateUpdate`), weights clients by module W with sample counts capped
 * (every rule but `none`), applies `ctx.robust` (default `none`), FedAvg of heads (module E), then
 * the server optimiser's step along the head delta (`ctx.serverOptimizer`, default none), and the
 * strategy's centroid merge (module C). `entries` must be in canonical order without duplicates.
 */
export function* aggregationSteps(entries: readonly RoundEntry[], ctx: AggregationContext, parts: MergeParts): AggregationSteps {
  checkContext(ctx);
  const n = entries.length;
  if (n === 0) throw new AggregationError('no-updates', 'no client updates to aggregate');
  const seen = new Set<string>();
  for (const entry of entries) {
    if (seen.has(entry.clientId)) throw new AggregationError('duplicate-client', 'sent more than one update in this round', entry.clientId);
    seen.add(entry.clientId);
    if (!Number.isSafeInteger(entry.samples) || entry.samples <= 0) {
      throw new AggregationError('bad-sample-count', `sample count must be a positive integer, got ${entry.samples}`, entry.clientId);
    }
  }
  const rule: RobustRule = ctx.robust ?? { kind: 'none' };
  const { modules, previous, k, codeDim } = ctx;
  const reported = entries.map((e) => e.samples);
  const counted = rule.kind === 'none' ? reported : capSampleCounts(reported);
  const weights = clientWeights(counted, modules.weighted);
  let expectation: Parameters<typeof validateUpdate>[1] | undefined;

  // `finite: false`: the caller checks finiteness itself (pass 1, from the delta norms).
  const load = function* (index: number, finite = true): Generator<number, ClientUpdate, ClientUpdate> {
    const update = yield index;
    if (update?.clientId !== entries[index].clientId) throw new ConfigError(`update ${index} should be client ${entries[index].clientId}'s, got ${String(update?.clientId)}`);
    expectation ??= { channels: ctx.channels, codeDim, k, backboneSha256: ctx.backboneSha256 ?? update.backboneSha256, featureKey: ctx.featureKey ?? update.featureKey };
    validateUpdate({ ...update, samples: entries[index].samples }, expectation, { finite });
    return update;
  };

  // Pass 1: every update once. Head sums are kept unless the rule needs every head at once; they are
  // summed in the same loop that measures the head's delta (one read of each update).
  const keepsAll = rule.kind === 'trimmed-mean' || rule.kind === 'median' || rule.kind === 'krum';
  const headNorms: number[] = [];
  const centroidNorms: number[] = [];
  let centroids: Float32Array[] = [];
  const heads: HeadParams[] = [];
  let sums = modules.head && !keepsAll ? headAccumulator(ctx) : undefined;
  for (let i = 0; i < n; i++) {
    const update = yield* load(i, false);
    const headSquared = sums ? sums.addWithSquaredDistance(update.head, weights[i], previous.head) : headDistance(update.head, previous.head);
    const centroidSquared = squaredDistance(update.centroids, previous.centroids);
    // Finiteness of the update, from the squared deltas: squares of float32 differences summed in
    // float64 cannot overflow, so with a finite previous model they are finite exactly when every value
    // is. Otherwise the full check names the first bad value, as validateUpdate would have (the sums it
    // reached are thrown away with the round).
    if (!Number.isFinite(headSquared + centroidSquared)) checkUpdateFinite(update);
    headNorms.push(Math.sqrt(headSquared));
    centroidNorms.push(Math.sqrt(centroidSquared));
    centroids.push(update.centroids);
    if (keepsAll) heads.push(update.head);
  }

  const robust: Record<string, unknown> = {
    rule: formatRobustRule(rule),
    reportedSamples: reported,
    countedSamples: counted,
    headDeltaNorms: headNorms,
    centroidDeltaNorms: centroidNorms,
  };
  let head: HeadParams | undefined;
  let chosen = entries.map((_, i) => i);
  let pool: Float32Array | undefined;
  let meanCentroids: Float32Array | undefined;

  if (rule.kind === 'clip') {
    const headClip = clipFactors(headNorms, rule.multiplier);
    const centroidClip = clipFactors(centroidNorms, rule.multiplier);
    Object.assign(robust, { headClipThreshold: headClip.threshold, headClipFactors: headClip.factors, centroidClipThreshold: centroidClip.threshold, centroidClipFactors: centroidClip.factors });
    robust.clipped = entries.filter((_, i) => headClip.factors[i] < 1 || centroidClip.factors[i] < 1).map((e) => e.clientId);
    // Pass 2 only when a head was clipped: the sums of pass 1 used the unclipped heads.
    if (sums && headClip.factors.some((f) => f < 1)) {
      sums = headAccumulator(ctx);
      for (let i = 0; i < n; i++) {
        const update = yield* load(i);
        const factor = headClip.factors[i];
        const clipped = Object.fromEntries(HEAD_PARAM_NAMES.map((name) => [name, shrinkTowards(update.head[name], previous.head[name], factor)])) as unknown as HeadParams;
        sums.add(clipped, weights[i]);
      }
    }
    centroids = centroids.map((c, i) => shrinkTowards(c, previous.centroids, centroidClip.factors[i]));
  } else if (rule.kind === 'trimmed-mean' || rule.kind === 'median') {
    const trim = rule.kind === 'median' ? undefined : trimCount(n, rule.beta);
    const combine = (arrays: Float32Array[]) => (trim === undefined ? coordinateMedian(arrays) : coordinateTrimmedMean(arrays, trim));
    if (modules.head) head = Object.fromEntries(HEAD_PARAM_NAMES.map((name) => [name, combine(heads.map((h) => h[name]))])) as unknown as HeadParams;
    const alignedCentroids = centroids.map((c) => aligned(c, previous.centroids, k, codeDim));
    if (parts.centroidMerge === 'mean') {
      meanCentroids = combine(alignedCentroids);
    } else {
      // Pooled centroids far from their slot's coordinate-wise median are trimmed before clustering:
      // the trim count per slot for trimmed-mean, every row beyond the closest half for median.
      const keep = trim === undefined ? Math.ceil(n / 2) : n - trim;
      const rows: Float32Array[] = [];
      const trimmed: Record<string, number> = {};
      for (let slot = 0; slot < k; slot++) {
        const slotRows = alignedCentroids.map((c) => c.subarray(slot * codeDim, (slot + 1) * codeDim));
        const centre = coordinateMedian(slotRows);
        const order = slotRows.map((row, i) => ({ i, d: squaredDistance(row, centre) })).sort((a, b) => a.d - b.d || a.i - b.i);
        for (const { i } of order.slice(0, keep)) rows.push(slotRows[i]);
        for (const { i } of order.slice(keep)) trimmed[entries[i].clientId] = (trimmed[entries[i].clientId] ?? 0) + 1;
      }
      pool = new Float32Array(rows.length * codeDim);
      rows.forEach((row, i) => pool!.set(row, i * codeDim));
      robust.trimmedPooledRows = trimmed;
    }
    robust.trimmedPerEnd = trim ?? (n % 2 === 1 ? (n - 1) / 2 : n / 2 - 1);
  } else if (rule.kind === 'krum') {
    const f = krumAttackers(rule, n);
    const select = rule.select < 0 ? Math.max(1, n - f) : rule.select;
    const alignedCentroids = centroids.map((c) => aligned(c, previous.centroids, k, codeDim));
    const distances = new Float64Array(n * n);
    for (let i = 0; i < n; i++) {
      for (let j = i + 1; j < n; j++) {
        const d = headDistance(heads[i], heads[j]) + squaredDistance(alignedCentroids[i], alignedCentroids[j]);
        distances[i * n + j] = d;
        distances[j * n + i] = d;
      }
    }
    const selection = krumSelect(distances, n, f, select);
    chosen = selection.chosen;
    Object.assign(robust, { krumAttackers: f, krumSelect: select, krumScores: selection.scores, dropped: entries.filter((_, i) => !chosen.includes(i)).map((e) => e.clientId) });
    if (modules.head) {
      const chosenWeights = clientWeights(chosen.map((i) => counted[i]), modules.weighted);
      sums = headAccumulator(ctx);
      chosen.forEach((i, c) => sums!.add(heads[i], chosenWeights[c]));
    }
  }

  if (modules.head && !head) {
    const summed = sums!.result();
    head = Object.fromEntries(HEAD_PARAM_NAMES.map((name) => [name, summed[name]])) as unknown as HeadParams;
  }
  const optimizer = ctx.serverOptimizer ?? { kind: 'none' };
  let serverState: ServerOptimizerState | undefined;
  if (head && optimizer.kind !== 'none') {
    const stepped = applyServerOptimizer(optimizer, previous.head, head, ctx.serverState);
    head = stepped.head;
    serverState = stepped.state;
  }
  let merged: Float32Array = previous.centroids.slice();
  let mergeDetails: Record<string, unknown> = {};
  if (modules.centroids) {
    if (meanCentroids) {
      merged = meanCentroids;
    } else {
      const mergeWeights = chosen.length === n ? weights : clientWeights(chosen.map((i) => counted[i]), modules.weighted);
      const updates = chosen.map((i): ClientUpdate => ({ clientId: entries[i].clientId, head: previous.head, centroids: centroids[i], samples: counted[i], backboneSha256: expectation!.backboneSha256, featureKey: expectation!.featureKey }));
      const result = parts.mergeCentroids({ updates, weights: mergeWeights, ctx, rng: createRng(ctx.seed), pool });
      if (result.centroids.length !== k * codeDim) throw new ShapeError(`strategy ${parts.name} merged ${result.centroids.length} centroid values, expected [${k}, ${codeDim}]`);
      merged = result.centroids;
      mergeDetails = result.details ?? {};
    }
    // Class ids stay stable across versions: the merge is reordered onto the previous centroids.
    const stable = keepCentroidIds(merged, previous.centroids, k, codeDim);
    merged = stable.centroids;
    mergeDetails = { ...mergeDetails, permutation: stable.permutation };
  }
  return {
    head: head ?? cloneHead(previous.head),
    centroids: merged,
    clientHeadsKept: !modules.head,
    clientCentroidsKept: !modules.centroids,
    details: {
      strategy: parts.name,
      modules: { head: modules.head, centroids: modules.centroids, weighted: modules.weighted },
      clients: entries.map((e) => e.clientId),
      samples: reported,
      weights: Array.from(weights),
      ...(rule.kind === 'none' ? {} : { robust }),
      ...(optimizer.kind === 'none' ? {} : { serverOptimizer: formatServerOptimizer(optimizer) }),
      ...mergeDetails,
    },
    ...(serverState ? { serverState } : {}),
  };
}

function headAccumulator(ctx: AggregationContext) {
  return new WeightedSumAccumulator(Object.fromEntries(HEAD_PARAM_NAMES.map((name) => [name, headParamLength(name, ctx.channels, ctx.codeDim)])) as Record<(typeof HEAD_PARAM_NAMES)[number], number>);
}

function checkContext(ctx: AggregationContext): void {
  for (const key of ['k', 'codeDim', 'channels'] as const) {
    const value = ctx[key];
    if (!Number.isSafeInteger(value) || value < 1) throw new ConfigError(`aggregation ${key} must be an integer >= 1, got ${value}`);
  }
  if (!Number.isFinite(ctx.seed)) throw new ConfigError(`aggregation seed must be a finite number, got ${ctx.seed}`);
  const { modules, previous } = ctx;
  if (modules === undefined || typeof modules.head !== 'boolean' || typeof modules.centroids !== 'boolean' || typeof modules.weighted !== 'boolean') {
    throw new ConfigError('aggregation modules must give head, centroids and weighted as booleans');
  }
  if ((ctx.serverOptimizer?.kind ?? 'none') !== 'none' && !modules.head) {
    throw new ConfigError('a server optimiser steps along the aggregated head: it needs module E (aggregate the head)');
  }
  if (previous?.head === undefined) throw new ShapeError('the previous global model has no head');
  for (const name of HEAD_PARAM_NAMES) {
    const expected = headParamLength(name, ctx.channels, ctx.codeDim);
    if (!(previous.head[name] instanceof Float32Array) || previous.head[name].length !== expected) {
      throw new ShapeError(`previous global head.${name} has ${previous.head[name]?.length ?? 'no'} values, expected ${expected}`);
    }
  }
  if (!(previous.centroids instanceof Float32Array) || previous.centroids.length !== ctx.k * ctx.codeDim) {
    throw new ShapeError(`previous global centroids have ${previous.centroids?.length ?? 'no'} values, expected [${ctx.k}, ${ctx.codeDim}]`);
  }
}
