// Weighted averaging of float32 tensors with float64 accumulation: FedAvg's θ = Σ w_i θ_i and
// M = Σ w_i M_i (Eq. 8, 9), in one shot or streamed one client at a time.

import { HEAD_PARAM_NAMES, type HeadParamName, type HeadParams } from '../engines/engine.js';
import { ConfigError, ShapeError } from '../errors.js';

/**
 * Weighted mean of equally long arrays, `Σ_i w_i a_i / Σ_i w_i` (Eq. 8-9). Products are summed in
 * float64 in the given order, then divided by the total weight and rounded once to float32. Dividing by
 * the total means raw sample counts work as weights too; with weights that already sum to 1 it only
 * removes their rounding error. The mean of identical arrays is that array, exactly (the float64
 * error is far below half a float32 ulp).
 *
 * @param arrays - N arrays of the same length L (any shape, flattened)
 * @param weights - N finite weights >= 0 with a positive sum
 * @returns a new [L] Float32Array
 * @throws ShapeError when there is no array, the lengths differ, or weights.length !== N
 * @throws ConfigError when a weight is negative or non-finite, or they sum to 0
 */
export function weightedMean(arrays: readonly Float32Array[], weights: ArrayLike<number>): Float32Array {
  if (arrays.length === 0) throw new ShapeError('weighted mean of no arrays');
  if (weights.length !== arrays.length) throw new ShapeError(`${weights.length} weights for ${arrays.length} arrays`);
  const length = arrays[0].length;
  const sums = new Float64Array(length);
  let total = 0;
  for (let i = 0; i < arrays.length; i++) {
    const values = arrays[i];
    if (values.length !== length) throw new ShapeError(`array ${i} has ${values.length} values, array 0 has ${length}`);
    const w = checkWeight(weights[i], i);
    addScaledInto(sums, values, w);
    total += w;
  }
  return normalise(sums, total);
}

/**
 * FedAvg of heads (Eq. 8): {@link weightedMean} of every head tensor (`HEAD_PARAM_NAMES`).
 *
 * @param heads - N heads of one shape
 * @param weights - N weights, as {@link weightedMean}
 * @returns a new head
 */
export function weightedMeanHead(heads: readonly HeadParams[], weights: ArrayLike<number>): HeadParams {
  const out = {} as HeadParams;
  for (const name of HEAD_PARAM_NAMES) {
    out[name] = weightedMean(
      heads.map((head) => head[name]),
      weights,
    );
  }
  return out;
}

/**
 * Streaming weighted mean of named float32 tensors: `add` one client at a time, then `result()`
 * gives `Σ w_i x_i / Σ w_i` per name (Eq. 8-9). Memory is one float64 buffer per name, independent of
 * the number of clients, so a server can fold updates in as they are read. For the same inputs in the
 * same order the result equals {@link weightedMean} bit for bit (same float64 arithmetic).
 *
 * @typeParam K - tensor names, e.g. `HeadParamName | 'centroids'`
 */
export class WeightedSumAccumulator<K extends string = string> {
  private readonly sums: Record<K, Float64Array>;
  private readonly names: readonly K[];
  private total = 0;
  private added = 0;

  /**
   * @param lengths - number of values of each named tensor
   * @throws ShapeError when a length is not a non-negative integer
   */
  constructor(lengths: Readonly<Record<K, number>>) {
    this.names = Object.keys(lengths) as K[];
    this.sums = {} as Record<K, Float64Array>;
    for (const name of this.names) {
      const length = lengths[name];
      if (!Number.isSafeInteger(length) || length < 0) throw new ShapeError(`length of ${name} must be a non-negative integer, got ${length}`);
      this.sums[name] = new Float64Array(length);
    }
  }

  /** Accumulator for a head plus centroids: the tensors of one FedAvg update (Eq. 8-9). */
  static forModel(channels: number, codeDim: number, k: number): WeightedSumAccumulator<HeadParamName | 'centroids'> {
    return new WeightedSumAccumulator<HeadParamName | 'centroids'>({
      l1Weight: codeDim * channels,
      l1Bias: codeDim,
      l2Weight: channels * channels,
      l2Bias: channels,
      l3Weight: codeDim * channels,
      l3Bias: codeDim,
      centroids: k * codeDim,
    });
  }

  /** Number of `add` calls so far. */
  get count(): number {
    return this.added;
  }

  /** Sum of the weights added so far. */
  get totalWeight(): number {
    return this.total;
  }

  /**
   * Adds `weight * values[name]` to every running sum. Extra keys of `values` are ignored.
   *
   * @throws ShapeError when a named tensor is missing or has the wrong length (nothing is added then)
   * @throws ConfigError when the weight is negative or non-finite
   */
  add(values: Readonly<Record<K, Float32Array>>, weight: number): void {
    const w = checkWeight(weight, this.added);
    for (const name of this.names) {
      const array = values[name];
      if (!(array instanceof Float32Array) || array.length !== this.sums[name].length) {
        throw new ShapeError(`${name} must be a Float32Array of ${this.sums[name].length} values, got ${array?.length ?? 'none'}`);
      }
    }
    for (const name of this.names) addScaledInto(this.sums[name], values[name], w);
    this.total += w;
    this.added++;
  }

  /**
   * {@link add}, and in the same pass over each tensor its squared distance from `reference[name]`
   * (float64, as robust.ts `squaredDistance`); returns the sum of those over the accumulator's names, in
   * their order (as `Σ_name squaredDistance(values[name], reference[name])` gives it, bit for bit). One
   * read of the values instead of two: a round's head deltas and sums come from one streaming pass.
   *
   * @throws ShapeError when a tensor of `values` or `reference` is missing or has the wrong length (nothing is added then)
   * @throws ConfigError when the weight is negative or non-finite
   */
  addWithSquaredDistance(values: Readonly<Record<K, Float32Array>>, weight: number, reference: Readonly<Record<K, Float32Array>>): number {
    const w = checkWeight(weight, this.added);
    for (const name of this.names) {
      for (const array of [values[name], reference[name]]) {
        if (!(array instanceof Float32Array) || array.length !== this.sums[name].length) {
          throw new ShapeError(`${name} must be a Float32Array of ${this.sums[name].length} values, got ${array?.length ?? 'none'}`);
        }
      }
    }
    let distance = 0;
    for (const name of this.names) distance += addScaledIntoWithDistance(this.sums[name], values[name], w, reference[name]);
    this.total += w;
    this.added++;
    return distance;
  }

  /**
   * The weighted means so far, as new Float32Arrays. The accumulator stays usable.
   *
   * @throws ConfigError when nothing (or only zero weight) was added
   */
  result(): Record<K, Float32Array> {
    const out = {} as Record<K, Float32Array>;
    for (const name of this.names) out[name] = normalise(this.sums[name], this.total);
    return out;
  }
}

function checkWeight(weight: number, index: number): number {
  if (!Number.isFinite(weight) || weight < 0) throw new ConfigError(`weight ${index} must be finite and >= 0, got ${weight}`);
  return weight;
}

/** `sums += w * values`, float64. */
function addScaledInto(sums: Float64Array, values: Float32Array, w: number): void {
  const n = sums.length;
  for (let j = 0; j < n; j++) sums[j] += w * values[j];
}

/** {@link addScaledInto} and `Σ (values - reference)²` (float64, robust.ts squaredDistance's arithmetic) in one loop. */
function addScaledIntoWithDistance(sums: Float64Array, values: Float32Array, w: number, reference: Float32Array): number {
  const n = sums.length;
  let squared = 0;
  for (let j = 0; j < n; j++) {
    const x = values[j];
    const d = x - reference[j];
    squared += d * d;
    sums[j] += w * x;
  }
  return squared;
}

function normalise(sums: Float64Array, total: number): Float32Array {
  if (!(total > 0)) throw new ConfigError(`weights must have a positive sum, got ${total}`);
  const out = new Float32Array(sums.length);
  for (let j = 0; j < sums.length; j++) out[j] = sums[j] / total;
  return out;
}
