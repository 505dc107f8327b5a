// Builds a strategy from its one varying step, the centroid merge: validation, canonical order,
// module W weights, the robust layer, FedAvg of heads (module E) and the module switches are written
// once, in aggregation-steps.ts.

import { aggregationSteps, runAggregation, type MergeParts } from './aggregation-steps.js';
import type { AggregationContext, AggregationResult, Strategy } from './strategy.js';
import { canonicalOrder, type ClientUpdate } from './update.js';

/** Parts of a composed strategy. */
export interface StrategyParts extends MergeParts {
  description: string;
}

/**
 * A {@link Strategy} whose head is FedAvg (Eq. 8) and whose centroids come from `mergeCentroids`
 * (Eq. 9 for FedAvg, Eq. 10-11 FedCC-KMeans, Eq. 12 FedCC-Maximin), with the robust rule of
 * `ctx.robust` around them (robust.ts). `aggregate`:
 * 1. orders updates by client id (`canonicalOrder`), so the result ignores arrival order;
 * 2. checks `ctx` and each update (`validateUpdate`; the expected backbone is `ctx.backboneSha256` /
 *    `ctx.featureKey`, or the smallest client id's when they are omitted);
 * 3. weights clients with module W (`clientWeights`, sample counts capped unless the rule is `none`);
 * 4. applies the robust rule (clipping, trimming or Krum's selection);
 * 5. head: weighted mean when module E is on, else a copy of `ctx.previous.head` and `clientHeadsKept`;
 * 6. centroids: the merge when module C is on (rng = `createRng(ctx.seed)`), reordered onto
 *    `ctx.previous.centroids` so class ids stay stable across versions (`keepCentroidIds`; the order
 *    is in `details.permutation`), else a copy of `ctx.previous.centroids` and `clientCentroidsKept`.
 */
export function composeStrategy(parts: StrategyParts): Strategy {
  const { name, description } = parts;
  return {
    name,
    description,
    aggregate(updates: readonly ClientUpdate[], ctx: AggregationContext): AggregationResult {
      const ordered = canonicalOrder(updates);
      return runAggregation(aggregationSteps(ordered.map((u) => ({ clientId: u.clientId, samples: u.samples })), ctx, parts), (i) => ordered[i]);
    },
    steps: (entries, ctx) => aggregationSteps(entries, ctx, parts),
  };
}
