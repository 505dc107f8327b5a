// Label-free calibration of the correspondence shifts (Eq. 6). STEGO's shifts were tuned for DINO ViT
// features; on other backbones the same numbers can make almost every pair attractive (collapse) or
// repulsive. Here each shift is set to a quantile of the participant's own centred feature
// correlations Fc for that kind of pair, so a chosen share of pairs attracts whatever the backbone.

import type { Rng } from '../math/rng.js';
import { QueryOrder, sampleBatch, type BatchOptions, type PairTerms } from './batch-sampler.js';
import type { FeatureStore } from './feature-store.js';
import { centredFeatureCorrelationInto } from './feature-correlation.js';

/** Quantiles of Fc used as shifts: the share of pairs above them attracts (measured, bench/RESULTS.md). */
export const DEFAULT_SHIFT_QUANTILES: PairTerms = { intra: 0.7, inter: 0.7, neg: 0.85 };

export interface ShiftCalibration {
  shifts: PairTerms;
  quantiles: PairTerms;
  /** Values of Fc measured per kind of pair. */
  samples: { intra: number; inter: number; neg: number };
}

/**
 * Samples `batches` training batches, computes the centred feature correlation Fc of every pair and
 * returns, per kind of pair (self, neighbour, negative), the requested quantile as its shift.
 */
export function calibrateShifts(
  store: FeatureStore,
  options: BatchOptions,
  rng: Rng,
  quantiles: PairTerms = DEFAULT_SHIFT_QUANTILES,
  batches = 4,
): ShiftCalibration {
  const values: Record<keyof PairTerms, number[]> = { intra: [], inter: [], neg: [] };
  const order = new QueryOrder(store.images.length, rng.fork());
  for (let b = 0; b < batches; b++) {
    const batch = sampleBatch(store, { ...options, dropout: 0 }, order, rng);
    const { cells: N, queries: Q } = batch;
    const fc = new Float64Array(N * N);
    for (let p = 0; p < batch.pairA.length; p++) {
      const kind: keyof PairTerms = batch.pairA[p] === batch.pairB[p] ? 'intra' : batch.pairB[p] >= Q ? 'inter' : 'neg';
      centredFeatureCorrelationInto(fc, batch, p);
      for (const v of fc) values[kind].push(v);
    }
  }
  const quantile = (list: number[], q: number) => {
    if (list.length === 0) return 0;
    const sorted = Float64Array.from(list).sort();
    return sorted[Math.min(sorted.length - 1, Math.floor(q * (sorted.length - 1)))];
  };
  return {
    shifts: {
      intra: quantile(values.intra, quantiles.intra),
      inter: quantile(values.inter, quantiles.inter),
      neg: quantile(values.neg, quantiles.neg),
    },
    quantiles,
    samples: { intra: values.intra.length, inter: values.inter.length, neg: values.neg.length },
  };
}
