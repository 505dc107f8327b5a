// Robust aggregation rules (the trust layer every strategy gets): what a round does with updates that
// may come from faulty or malicious participants. Pure maths over typed arrays; the round itself is
// composed in aggregation-steps.ts.
//
// - `none`: the paper's behaviour (FedAvg of heads, the strategy's merge of centroids).
// - `clip` (the default): each update's distance from the global model it started from (its delta),
//   per module (head, centroids), is clipped to CLIP_MULTIPLIER times the round's median delta norm,
//   then the strategy runs as before (Sun et al. 2019, "Can you really backdoor FL?", norm bounding,
//   with an adaptive bound).
// - `trimmed-mean[:β]` and `median`: coordinate-wise over the participants (Yin et al. 2018), for the
//   head and for centroids aligned to the previous global ones; with a FedCC merge, outlying pooled
//   centroids are trimmed per aligned slot before clustering.
// - `krum[:f]` and `multi-krum[:f[:m]]`: the participants whose updates are closest to their n - f - 2
//   nearest neighbours (Blanchard et al. 2017); the strategy then runs on those only.
// Every rule except `none` also caps each participant's sample count at SAMPLE_CAP_MULTIPLE times the
// round's median count before module W weights them, so a participant lying about its size cannot
// take over the average.

import { ConfigError } from '../errors.js';

export type RobustRule =
  | { kind: 'none' }
  | { kind: 'clip'; multiplier: number }
  | { kind: 'trimmed-mean'; beta: number }
  | { kind: 'median' }
  | { kind: 'krum'; f: number; select: number };

/** Updates are clipped to this many times the round's median delta norm (per module). */
export const CLIP_MULTIPLIER = 2;
/** Sample counts are capped at this many times the round's median count. */
export const SAMPLE_CAP_MULTIPLE = 2;
/** β of `trimmed-mean` without one: the share of participants trimmed at each end, per coordinate. */
export const DEFAULT_TRIM_BETA = 0.2;

export const ROBUST_RULE_HELP = 'none, clip[:multiplier], trimmed-mean[:beta], median, krum[:f], multi-krum[:f[:m]]';

/** The pattern of a rule's text form (API schemas validate it before parseRobustRule). */
export const ROBUST_RULE_PATTERN = '^(none|clip(:[0-9.]+)?|trimmed-mean(:[0-9.]+)?|median|krum(:[0-9]+)?|multi-krum(:[0-9]+(:[0-9]+)?)?)$';

/**
 * Parses `none`, `clip[:c]`, `trimmed-mean[:β]` (0 <= β < 0.5), `median`, `krum[:f]` or
 * `multi-krum[:f[:m]]`. Without f, Krum assumes f = floor((n - 3) / 2) attackers at aggregation time
 * (stored as -1); without m, multi-Krum averages the n - f best.
 *
 * @throws ConfigError naming the accepted forms
 */
export function parseRobustRule(text: string): RobustRule {
  const [name, ...args] = text.trim().split(':');
  const numbers = args.map(Number);
  if (numbers.some((n) => !Number.isFinite(n))) throw new ConfigError(`robust rule "${text}": arguments must be numbers (${ROBUST_RULE_HELP})`);
  const integer = (value: number, what: string) => {
    if (!Number.isInteger(value) || value < 0) throw new ConfigError(`robust rule "${text}": ${what} must be a non-negative integer`);
    return value;
  };
  switch (name) {
    case 'none':
    case 'median':
      if (args.length) break;
      return { kind: name };
    case 'clip': {
      if (args.length > 1) break;
      const multiplier = numbers[0] ?? CLIP_MULTIPLIER;
      if (!(multiplier >= 1)) throw new ConfigError(`robust rule "${text}": the clip multiplier must be >= 1`);
      return { kind: 'clip', multiplier };
    }
    case 'trimmed-mean': {
      if (args.length > 1) break;
      const beta = numbers[0] ?? DEFAULT_TRIM_BETA;
      if (!(beta >= 0 && beta < 0.5)) throw new ConfigError(`robust rule "${text}": beta must be in [0, 0.5)`);
      return { kind: 'trimmed-mean', beta };
    }
    case 'krum':
      if (args.length > 1) break;
      return { kind: 'krum', f: args.length ? integer(numbers[0], 'f') : -1, select: 1 };
    case 'multi-krum':
      if (args.length > 2) break;
      return { kind: 'krum', f: args.length ? integer(numbers[0], 'f') : -1, select: args.length > 1 ? Math.max(1, integer(numbers[1], 'm')) : -1 };
  }
  throw new ConfigError(`unknown robust rule "${text}"; choose ${ROBUST_RULE_HELP}`);
}

/** The canonical text form of a rule (inverse of parseRobustRule). */
export function formatRobustRule(rule: RobustRule): string {
  switch (rule.kind) {
    case 'none':
    case 'median':
      return rule.kind;
    case 'clip':
      return rule.multiplier === CLIP_MULTIPLIER ? 'clip' : `clip:${rule.multiplier}`;
    case 'trimmed-mean':
      return `trimmed-mean:${rule.beta}`;
    case 'krum':
      if (rule.select === 1) return rule.f < 0 ? 'krum' : `krum:${rule.f}`;
      return `multi-krum${rule.f < 0 ? '' : `:${rule.f}`}${rule.select < 0 ? '' : `:${rule.select}`}`;
  }
}

/** The lower median (the ⌊(n-1)/2⌋-th smallest): with two values the smaller, so one outlier of two cannot set it. */
export function lowerMedian(values: readonly number[]): number {
  if (values.length === 0) throw new ConfigError('median of no values');
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)];
}

/** Sample counts capped at `multiple` times their lower median: `min(n_i, multiple * median)`. */
export function capSampleCounts(samples: readonly number[], multiple = SAMPLE_CAP_MULTIPLE): number[] {
  const cap = multiple * lowerMedian(samples);
  return samples.map((n) => Math.min(n, cap));
}

/** Squared Euclidean distance of `values` from `reference`, accumulated in float64. */
export function squaredDistance(values: Float32Array, reference: Float32Array): number {
  let sum = 0;
  for (let i = 0; i < values.length; i++) {
    const d = values[i] - reference[i];
    sum += d * d;
  }
  return sum;
}

/**
 * Clip factors `min(1, τ / ‖Δ_i‖)` with τ = `multiplier` times the lower median of the norms. A zero
 * norm keeps factor 1. Returns the factors and τ.
 */
export function clipFactors(norms: readonly number[], multiplier = CLIP_MULTIPLIER): { factors: number[]; threshold: number } {
  const threshold = multiplier * lowerMedian(norms);
  return { factors: norms.map((norm) => (norm > threshold ? threshold / norm : 1)), threshold };
}

/** `reference + factor * (values - reference)`, a new array (the clipped update). */
export function shrinkTowards(values: Float32Array, reference: Float32Array, factor: number): Float32Array {
  if (factor === 1) return values;
  const out = new Float32Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = reference[i] + factor * (values[i] - reference[i]);
  return out;
}

/** Participants trimmed at each end by `trimmed-mean:β` among n: ⌊β·n⌋, leaving at least one. */
export function trimCount(n: number, beta: number): number {
  return Math.min(Math.floor(beta * n), Math.floor((n - 1) / 2));
}

/**
 * Coordinate-wise trimmed mean: per coordinate, the values of the n arrays sorted, `trim` dropped at
 * each end, the rest averaged (float64). `trim = floor((n-1)/2)` gives the coordinate-wise median for
 * odd n; {@link coordinateMedian} handles even n.
 */
export function coordinateTrimmedMean(arrays: readonly Float32Array[], trim: number): Float32Array {
  const n = arrays.length;
  if (n === 0) throw new ConfigError('trimmed mean of no arrays');
  if (trim < 0 || 2 * trim >= n) throw new ConfigError(`cannot trim ${trim} of ${n} values at each end`);
  const length = arrays[0].length;
  const out = new Float32Array(length);
  const column = new Float64Array(n);
  const kept = n - 2 * trim;
  for (let j = 0; j < length; j++) {
    for (let i = 0; i < n; i++) column[i] = arrays[i][j];
    column.sort();
    let sum = 0;
    for (let i = trim; i < n - trim; i++) sum += column[i];
    out[j] = sum / kept;
  }
  return out;
}

/** Coordinate-wise median (the mean of the two middle values for even n). */
export function coordinateMedian(arrays: readonly Float32Array[]): Float32Array {
  const n = arrays.length;
  if (n % 2 === 1) return coordinateTrimmedMean(arrays, (n - 1) / 2);
  if (n === 0) throw new ConfigError('median of no arrays');
  return coordinateTrimmedMean(arrays, n / 2 - 1);
}

/**
 * Krum's selection (Blanchard et al. 2017): each participant's score is the sum of squared distances
 * to its n - f - 2 nearest others; the `select` lowest scores are chosen (1: Krum; n - f: multi-Krum's
 * default). `distances[i * n + j]` are the pairwise squared distances. Ties go to the lower index.
 *
 * @returns chosen indices in ascending order, and every score
 */
export function krumSelect(distances: Float64Array, n: number, f: number, select: number): { chosen: number[]; scores: number[] } {
  if (n < 1) throw new ConfigError('Krum of no updates');
  const neighbours = Math.max(1, n - f - 2);
  const scores: number[] = [];
  for (let i = 0; i < n; i++) {
    const others: number[] = [];
    for (let j = 0; j < n; j++) if (j !== i) others.push(distances[i * n + j]);
    others.sort((a, b) => a - b);
    scores.push(others.slice(0, Math.min(neighbours, others.length)).reduce((a, b) => a + b, 0));
  }
  const order = scores.map((score, index) => ({ score, index })).sort((a, b) => a.score - b.score || a.index - b.index);
  return { chosen: order.slice(0, Math.max(1, Math.min(select, n))).map((o) => o.index).sort((a, b) => a - b), scores };
}

/** f when the rule leaves it open: the most attackers Krum tolerates among n, floor((n - 3) / 2), at least 0. */
export function krumAttackers(rule: Extract<RobustRule, { kind: 'krum' }>, n: number): number {
  return rule.f >= 0 ? rule.f : Math.max(0, Math.floor((n - 3) / 2));
}
