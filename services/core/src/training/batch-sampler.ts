// Builds the StepBatch of one training step (engine.ts) from a participant's feature store: query
// images, one nearest-neighbour partner per query, negatives drawn among the other queries (STEGO's
// permutations of the batch), sampled or full-grid cells, centred unit features and dropout masks.

import { ConfigError } from '../errors.js';
import type { Rng } from '../math/rng.js';
import { shuffled } from '../math/rng.js';
import type { StepBatch } from '../engines/engine.js';
import { readCell, type FeatureStore } from './feature-store.js';

export interface PairTerms {
  intra: number;
  inter: number;
  neg: number;
}

export interface BatchOptions {
  queries: number;
  negatives: number;
  /** `sampled`: samplePoints^2 random cells per image (STEGO); `full`: every cell (same grid needed). */
  sampling: 'sampled' | 'full';
  samplePoints: number;
  weights: PairTerms;
  shifts: PairTerms;
  /** Subtract the participant's mean feature before the feature cosine (prevents collapse on ReLU features). */
  centre: boolean;
  dropout: number;
}

/** Draws query images epoch by epoch: every image once per pass, in a fresh seeded order. */
export class QueryOrder {
  private order: number[] = [];
  private position = 0;
  constructor(
    private readonly count: number,
    private readonly rng: Rng,
  ) {}

  next(n: number): number[] {
    const picked: number[] = [];
    while (picked.length < n) {
      if (this.position >= this.order.length) {
        this.order = shuffled(Array.from({ length: this.count }, (_, i) => i), this.rng);
        this.position = 0;
      }
      const candidate = this.order[this.position++];
      if (!picked.includes(candidate)) picked.push(candidate);
    }
    return picked;
  }
}

/** A random permutation of 0..n-1 without fixed points (n >= 2). */
export function derangement(n: number, rng: Rng): Int32Array {
  for (;;) {
    const perm = Int32Array.from(shuffled(Array.from({ length: n }, (_, i) => i), rng));
    if (perm.every((v, i) => v !== i)) return perm;
  }
}

export function cellsPerImage(store: FeatureStore, options: BatchOptions): number {
  if (options.sampling === 'sampled') return options.samplePoints * options.samplePoints;
  const first = store.images[0];
  const mismatch = store.images.find((im) => im.height !== first.height || im.width !== first.width);
  if (mismatch) {
    throw new ConfigError(`full-grid training needs one feature grid size; ${mismatch.id} is ${mismatch.height}x${mismatch.width}, ${first.id} is ${first.height}x${first.width}`);
  }
  return first.height * first.width;
}

/**
 * `reuse`: a batch the caller is done with; its feature buffers are overwritten when the sizes match.
 * (Two fresh 6 MB arrays per step cost more in first-touch page faults on these VMs than the gather.)
 */
export function sampleBatch(store: FeatureStore, options: BatchOptions, order: QueryOrder, rng: Rng, reuse?: StepBatch): StepBatch {
  const n = store.images.length;
  const Q = Math.min(options.queries, n);
  const C = store.channels;
  const N = cellsPerImage(store, options);
  const queries = order.next(Q);
  const partners = queries.map((q) => {
    const candidates = store.neighbours[q];
    return candidates.length > 0 ? candidates[rng.int(candidates.length)] : q;
  });
  const imageIndices = [...queries, ...partners];
  const I = imageIndices.length;

  const size = I * N * C;
  const features = reuse?.features.length === size ? reuse.features : new Float32Array(size);
  const featuresUnit = reuse?.featuresUnit.length === size && reuse.featuresUnit !== features ? reuse.featuresUnit : new Float32Array(size);
  for (let i = 0; i < I; i++) {
    const image = store.images[imageIndices[i]];
    const cells = image.height * image.width;
    for (let j = 0; j < N; j++) {
      const p = options.sampling === 'full' ? j : rng.int(cells);
      readCell(image, C, p, features, (i * N + j) * C);
    }
  }
  // Feature-correlation inputs: optionally centred, then unit length.
  for (let row = 0; row < I * N; row++) {
    const base = row * C;
    let norm = 0;
    for (let c = 0; c < C; c++) {
      const v = features[base + c] - (options.centre ? store.mean[c] : 0);
      featuresUnit[base + c] = v;
      norm += v * v;
    }
    const scale = norm > 0 ? 1 / Math.sqrt(norm) : 0;
    for (let c = 0; c < C; c++) featuresUnit[base + c] *= scale;
  }

  const dropMask = () => {
    const mask = new Float32Array(I * C);
    const keep = 1 / (1 - options.dropout);
    for (let i = 0; i < mask.length; i++) mask[i] = rng.next() < options.dropout ? 0 : keep;
    return mask;
  };

  // Pairs: (q, q) intra, (q, partner) inter, (q, other query) negatives; weights average over the batch.
  const pairA: number[] = [];
  const pairB: number[] = [];
  const pairWeight: number[] = [];
  const pairShift: number[] = [];
  const add = (a: number, b: number, weight: number, shift: number) => {
    pairA.push(a);
    pairB.push(b);
    pairWeight.push(weight);
    pairShift.push(shift);
  };
  for (let q = 0; q < Q; q++) {
    add(q, q, options.weights.intra / Q, options.shifts.intra);
    add(q, Q + q, options.weights.inter / Q, options.shifts.inter);
  }
  const negatives = Q >= 2 ? options.negatives : 0;
  for (let r = 0; r < negatives; r++) {
    const perm = derangement(Q, rng);
    for (let q = 0; q < Q; q++) add(q, perm[q], options.weights.neg / (Q * negatives), options.shifts.neg);
  }
  return {
    images: I,
    cells: N,
    channels: C,
    queries: Q,
    features,
    featuresUnit,
    dropMask1: dropMask(),
    dropMask2: dropMask(),
    pairA: Int32Array.from(pairA),
    pairB: Int32Array.from(pairB),
    pairWeight: Float32Array.from(pairWeight),
    pairShift: Float32Array.from(pairShift),
  };
}
