// The contract of a federation strategy (Flower-like, STYLE 4): a name, a description and one
// `aggregate(updates, ctx)` that turns a round's client updates into the next global model.

import type { HeadParams } from '../engines/engine.js';
import type { Rng } from '../math/rng.js';
import type { ClientUpdate } from './update.js';
import type { RobustRule } from './robust.js';
import type { ServerOptimizer, ServerOptimizerState } from './server-optimizer.js';
import type { AggregationSteps, RoundEntry } from './aggregation-steps.js';

/**
 * The ablation modules of the paper's Table 3 (DESIGN section 3.2); any subset may be on.
 * The reference code's names: "encoder" = E only, "not_encoder" = C only, "weighted_*" = W.
 */
export interface AggregationModules {
  /** E: aggregate the heads (FedAvg, Eq. 8). Off: participants keep their own heads. */
  head: boolean;
  /** C: aggregate the centroids (Eq. 9-12, per strategy). Off: the global centroids stay as they were. */
  centroids: boolean;
  /** W: weight clients by sample count (`n_i / Σ n`) instead of uniformly (`1 / |clients|`). */
  weighted: boolean;
}

/** Everything a strategy needs besides the updates. */
export interface AggregationContext {
  /** Number of centroids K. */
  k: number;
  /** Code dimension D. */
  codeDim: number;
  /** Backbone feature channels C. */
  channels: number;
  /** Seeds every random choice of the round (k-means++ seeds, maximin start); same seed, same result. */
  seed: number;
  modules: AggregationModules;
  /** The previous global model (round 0: the initial model). Returned, copied, for disabled modules. */
  previous: { head: HeadParams; centroids: Float32Array };
  /**
   * The federation's backbone sha256 and feature key. When omitted, every update must agree with the
   * update of the smallest client id instead.
   */
  backboneSha256?: string;
  featureKey?: string;
  /** The robust rule of the round (robust.ts); default `none`, the paper's behaviour. */
  robust?: RobustRule;
  /** Server optimiser on the aggregated head (server-optimizer.ts; needs module E); default `none`. */
  serverOptimizer?: ServerOptimizer;
  /** The optimiser's state after the previous round (undefined in the first round). */
  serverState?: ServerOptimizerState;
}

/** The next global model and how it was made. */
export interface AggregationResult {
  /** Global head: FedAvg of the clients' heads (module E), else a copy of `previous.head`. */
  head: HeadParams;
  /** Global centroids [K, D]: the strategy's merge (module C), else a copy of `previous.centroids`. */
  centroids: Float32Array;
  /** True when module E is off: participants keep training (and are evaluated with) their own heads. */
  clientHeadsKept: boolean;
  /**
   * True when module C is off. The global centroids then stay `previous.centroids`; an orchestrator
   * that wants the reference code's "encoder only" behaviour lets participants keep their own centroids.
   */
  clientCentroidsKept: boolean;
  /**
   * JSON-serialisable diagnostics: strategy, clients in aggregation order, weights, merge statistics,
   * and with module C `permutation` (`permutation[id]`: the merged row that became class id `id`).
   */
  details: Record<string, unknown>;
  /** With a server optimiser: its state after this round, for the next one. */
  serverState?: ServerOptimizerState;
}

/** A federation strategy (DESIGN section 3.2). Pure: no I/O, randomness only from `ctx.seed`. */
export interface Strategy {
  /** Registry name, e.g. `fedcc-kmeans`. */
  readonly name: string;
  /** One line for logs and help text, citing the paper equations. */
  readonly description: string;
  /**
   * Validates the updates (`validateUpdates`), orders them by client id, and returns the next global
   * model. Never mutates its inputs; the result shares no buffer with them.
   *
   * @throws AggregationError when an update is malformed, incompatible or duplicated, or there is none
   * @throws ShapeError / ConfigError when `ctx` is inconsistent (e.g. `previous` has other shapes)
   */
  aggregate(updates: readonly ClientUpdate[], ctx: AggregationContext): AggregationResult;
  /**
   * The same aggregation as steps that ask for one update at a time (aggregation-steps.ts), for a
   * caller that reads updates from storage. `entries` in canonical order.
   */
  steps(entries: readonly RoundEntry[], ctx: AggregationContext): AggregationSteps;
}

/** What a {@link CentroidMerger} receives: validated updates in canonical (client id) order. */
export interface CentroidMergeInput {
  updates: readonly ClientUpdate[];
  /** Module W weights of `updates`, summing to 1. */
  weights: Float64Array;
  ctx: AggregationContext;
  /** Seeded from `ctx.seed`. */
  rng: Rng;
  /**
   * The pooled rows to cluster when a robust rule trimmed some ([rows, D]); pooling mergers use it
   * instead of pooling `updates`.
   */
  pool?: Float32Array;
}

/** The step that varies between strategies: K global centroids [K, D] from the clients' centroids. */
export type CentroidMerger = (input: CentroidMergeInput) => { centroids: Float32Array; details?: Record<string, unknown> };
