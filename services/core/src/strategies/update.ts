// What a participant sends at the end of a round (DESIGN section 3.2: head θ_i, centroids M_i and the
// sample count n_i) and the one check every update passes before any strategy sees it.

import { HEAD_PARAM_NAMES, type HeadParamName, type HeadParams } from '../engines/engine.js';
import { ConfigError } from '../errors.js';
import { indexOfNonFinite } from '../math/vectors.js';
import { AggregationError } from './aggregation-error.js';

/** One participant's contribution to a round. */
export interface ClientUpdate {
  /** Stable participant id; unique within a round. Strategies order updates by it (see {@link canonicalOrder}). */
  clientId: string;
  /** Locally trained head θ_i (shapes as in {@link HeadParams}: C backbone channels, D code channels). */
  head: HeadParams;
  /** The participant's final centroids of the round M_i, [K, D] row-major. */
  centroids: Float32Array;
  /** Number of local training images n_i, a positive integer (module W weights by it). */
  samples: number;
  /** sha256 of the backbone the features came from; must match the federation's. */
  backboneSha256: string;
  /** Feature configuration key of the backbone (outputs, input sizing, normalisation); must match too. */
  featureKey: string;
}

/** The shapes and backbone every update of a round must have. */
export interface UpdateExpectation {
  /** Backbone feature channels C. */
  channels: number;
  /** Code dimension D. */
  codeDim: number;
  /** Number of centroids K. */
  k: number;
  backboneSha256: string;
  featureKey: string;
}

/**
 * Number of float32 values of one head tensor: l1/l3 weights [D, C], l2 weight [C, C], l1/l3 biases
 * [D], l2 bias [C].
 */
export function headParamLength(name: HeadParamName, channels: number, codeDim: number): number {
  switch (name) {
    case 'l1Weight':
    case 'l3Weight':
      return codeDim * channels;
    case 'l2Weight':
      return channels * channels;
    case 'l2Bias':
      return channels;
    case 'l1Bias':
    case 'l3Bias':
      return codeDim;
  }
}

/**
 * Checks one update against the round's expectation, in this order: client id, backbone sha256 and
 * feature key (409), sample count, the length of every head tensor and of the centroids, then
 * finiteness of every value (400). This is the boundary check of DESIGN section 4; aggregation code
 * after it trusts shapes and values. With `finite: false` the finiteness of values is left to the
 * caller, who must run {@link checkUpdateFinite} before using them (aggregation-steps.ts does so when
 * the delta norms it computes anyway come out non-finite, saving a pass over every update).
 *
 * @throws AggregationError naming the client and the problem
 * @throws ConfigError when the expectation itself is malformed (non-positive dims)
 */
export function validateUpdate(update: ClientUpdate, expected: UpdateExpectation, options: { finite?: boolean } = {}): void {
  checkExpectation(expected);
  const id = update.clientId;
  if (typeof id !== 'string' || id.length === 0) {
    throw new AggregationError('bad-client-id', `client id must be a non-empty string, got ${JSON.stringify(id)}`);
  }
  if (update.backboneSha256 !== expected.backboneSha256) {
    throw new AggregationError(
      'backbone-mismatch',
      `trained on backbone sha256 ${String(update.backboneSha256)}, expected ${expected.backboneSha256}`,
      id,
    );
  }
  if (update.featureKey !== expected.featureKey) {
    throw new AggregationError(
      'feature-mismatch',
      `trained on other backbone features (key ${String(update.featureKey)}, expected ${expected.featureKey})`,
      id,
    );
  }
  if (!Number.isSafeInteger(update.samples) || update.samples <= 0) {
    throw new AggregationError('bad-sample-count', `sample count must be a positive integer, got ${update.samples}`, id);
  }
  const { channels, codeDim, k } = expected;
  const tensors: [string, unknown, number, string][] = HEAD_PARAM_NAMES.map((name) => [
    `head.${name}`,
    update.head?.[name],
    headParamLength(name, channels, codeDim),
    shapeText(name, channels, codeDim),
  ]);
  tensors.push(['centroids', update.centroids, k * codeDim, `[${k}, ${codeDim}]`]);
  for (const [what, values, length, shape] of tensors) {
    if (!(values instanceof Float32Array)) {
      throw new AggregationError('shape-mismatch', `${what} is missing or not a Float32Array (expected ${shape})`, id);
    }
    if (values.length !== length) {
      throw new AggregationError('shape-mismatch', `${what} has ${values.length} values, expected ${shape} = ${length}`, id);
    }
  }
  if (options.finite !== false) checkUpdateFinite(update);
}

/**
 * The finiteness part of {@link validateUpdate}: every head tensor (`HEAD_PARAM_NAMES` order), then
 * the centroids. Shapes must have been checked.
 *
 * @throws AggregationError `non-finite` naming the client, the tensor and the first bad index
 */
export function checkUpdateFinite(update: ClientUpdate): void {
  const tensors: [string, Float32Array][] = HEAD_PARAM_NAMES.map((name) => [`head.${name}`, update.head[name]]);
  tensors.push(['centroids', update.centroids]);
  for (const [what, data] of tensors) {
    const i = indexOfNonFinite(data);
    if (i >= 0) throw new AggregationError('non-finite', `${what} holds ${data[i]} at index ${i}`, update.clientId);
  }
}

/**
 * Checks a round's updates: at least one, no client id twice, and each passes {@link validateUpdate}.
 * Updates are checked in the given order; the first problem found is thrown.
 *
 * @throws AggregationError `no-updates` (400), `duplicate-client` (409) or any problem of {@link validateUpdate}
 */
export function validateUpdates(updates: readonly ClientUpdate[], expected: UpdateExpectation): void {
  if (updates.length === 0) throw new AggregationError('no-updates', 'no client updates to aggregate');
  const seen = new Set<string>();
  for (const update of updates) {
    validateUpdate(update, expected);
    if (seen.has(update.clientId)) throw new AggregationError('duplicate-client', 'sent more than one update in this round', update.clientId);
    seen.add(update.clientId);
  }
}

/**
 * The updates sorted by client id (UTF-16 code unit order, locale independent), as a new array.
 * Strategies aggregate in this order, so a result never depends on the order updates arrived in:
 * float summation order, the pooled-centroid order seen by seeded k-means, and maximin's random start
 * are all fixed by the set of updates and the seed.
 */
export function canonicalOrder<T extends Pick<ClientUpdate, 'clientId'>>(updates: readonly T[]): T[] {
  return updates.slice().sort((a, b) => (a.clientId < b.clientId ? -1 : a.clientId > b.clientId ? 1 : 0));
}

function shapeText(name: HeadParamName, channels: number, codeDim: number): string {
  switch (name) {
    case 'l1Weight':
    case 'l3Weight':
      return `[${codeDim}, ${channels}]`;
    case 'l2Weight':
      return `[${channels}, ${channels}]`;
    case 'l2Bias':
      return `[${channels}]`;
    case 'l1Bias':
    case 'l3Bias':
      return `[${codeDim}]`;
  }
}

function checkExpectation(expected: UpdateExpectation): void {
  for (const key of ['channels', 'codeDim', 'k'] as const) {
    const value = expected[key];
    if (!Number.isSafeInteger(value) || value < 1) throw new ConfigError(`expected ${key} must be an integer >= 1, got ${value}`);
  }
}
