// Builds a strategy from its one varying step, the centroid merge: validation, canonical order,
// module W weights, FedAvg of heads (module E) and the module switches are written once here.

import { HEAD_PARAM_NAMES, type HeadParams } from '../engines/engine.js';
import { cloneHead } from '../head/head-init.js';
import { ConfigError, ShapeError } from '../errors.js';
import { createRng } from '../math/rng.js';
import { AggregationError } from './aggregation-error.js';
import { keepCentroidIds } from './stable-ids.js';
import type { AggregationContext, AggregationResult, CentroidMerger, Strategy } from './strategy.js';
import { canonicalOrder, headParamLength, validateUpdates, type ClientUpdate } from './update.js';
import { weightedMeanHead } from './weighted-mean.js';
import { clientWeights } from './weights.js';

/** Parts of a composed strategy. */
export interface StrategyParts {
  name: string;
  description: string;
  /** Produces the global centroids when module C is on. */
  mergeCentroids: CentroidMerger;
}

/**
 * A {@link Strategy} whose head is FedAvg (Eq. 8) and whose centroids come from `mergeCentroids`
 * (Eq. 9 for FedAvg, Eq. 10-11 FedCC-KMeans, Eq. 12 FedCC-Maximin). `aggregate`:
 * 1. checks `ctx` and the updates (`validateUpdates`; the expected backbone is `ctx.backboneSha256` /
 *    `ctx.featureKey`, or the smallest client id's when they are omitted);
 * 2. orders updates by client id (`canonicalOrder`), so the result ignores arrival order;
 * 3. weights clients with module W (`clientWeights`);
 * 4. head: weighted mean when module E is on, else a copy of `ctx.previous.head` and `clientHeadsKept`;
 * 5. centroids: the merge when module C is on (rng = `createRng(ctx.seed)`), reordered onto
 *    `ctx.previous.centroids` so class ids stay stable across versions (`keepCentroidIds`; the order
 *    is in `details.permutation`), else a copy of `ctx.previous.centroids` and `clientCentroidsKept`.
 */
export function composeStrategy(parts: StrategyParts): Strategy {
  const { name, description, mergeCentroids } = parts;
  return {
    name,
    description,
    aggregate(updates: readonly ClientUpdate[], ctx: AggregationContext): AggregationResult {
      checkContext(ctx);
      if (updates.length === 0) throw new AggregationError('no-updates', 'no client updates to aggregate');
      const ordered = canonicalOrder(updates);
      validateUpdates(ordered, {
        channels: ctx.channels,
        codeDim: ctx.codeDim,
        k: ctx.k,
        backboneSha256: ctx.backboneSha256 ?? ordered[0].backboneSha256,
        featureKey: ctx.featureKey ?? ordered[0].featureKey,
      });
      const { modules } = ctx;
      const weights = clientWeights(
        ordered.map((u) => u.samples),
        modules.weighted,
      );
      const head = modules.head
        ? weightedMeanHead(
            ordered.map((u) => u.head),
            weights,
          )
        : cloneHead(ctx.previous.head);
      let centroids: Float32Array = ctx.previous.centroids.slice();
      let mergeDetails: Record<string, unknown> = {};
      if (modules.centroids) {
        const merged = mergeCentroids({ updates: ordered, weights, ctx, rng: createRng(ctx.seed) });
        if (merged.centroids.length !== ctx.k * ctx.codeDim) {
          throw new ShapeError(`strategy ${name} merged ${merged.centroids.length} centroid values, expected [${ctx.k}, ${ctx.codeDim}]`);
        }
        const stable = keepCentroidIds(merged.centroids, ctx.previous.centroids, ctx.k, ctx.codeDim);
        centroids = stable.centroids;
        mergeDetails = { ...merged.details, permutation: stable.permutation };
      }
      return {
        head,
        centroids,
        clientHeadsKept: !modules.head,
        clientCentroidsKept: !modules.centroids,
        details: {
          strategy: name,
          modules: { head: modules.head, centroids: modules.centroids, weighted: modules.weighted },
          clients: ordered.map((u) => u.clientId),
          samples: ordered.map((u) => u.samples),
          weights: Array.from(weights),
          ...mergeDetails,
        },
      };
    },
  };
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
  checkPreviousHead(previous?.head, ctx.channels, ctx.codeDim);
  if (!(previous.centroids instanceof Float32Array) || previous.centroids.length !== ctx.k * ctx.codeDim) {
    throw new ShapeError(`previous global centroids have ${previous.centroids?.length ?? 'no'} values, expected [${ctx.k}, ${ctx.codeDim}]`);
  }
}

function checkPreviousHead(head: HeadParams | undefined, channels: number, codeDim: number): void {
  if (head === undefined) throw new ShapeError('the previous global model has no head');
  for (const name of HEAD_PARAM_NAMES) {
    const expected = headParamLength(name, channels, codeDim);
    if (!(head[name] instanceof Float32Array) || head[name].length !== expected) {
      throw new ShapeError(`previous global head.${name} has ${head[name]?.length ?? 'no'} values, expected ${expected}`);
    }
  }
}
