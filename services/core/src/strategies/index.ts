// The one registry of federation strategies and the export list of strategies/ (STYLE 4): adding a
// strategy means one file, one line in STRATEGIES, and one hand-computed test.

import { ConfigError } from '../errors.js';
import { createAlignedFedAvg } from './aligned-fedavg.js';
import { createFedAvg } from './fedavg.js';
import { createFedCCKMeans } from './fedcc-kmeans.js';
import { createFedCCMaximin } from './fedcc-maximin.js';
import type { Strategy } from './strategy.js';

export * from './aggregation-error.js';
export * from './update.js';
export * from './weights.js';
export * from './weighted-mean.js';
export * from './centroid-mergers.js';
export * from './strategy.js';
export * from './compose.js';
export * from './robust.js';
export * from './server-optimizer.js';
export * from './aggregation-steps.js';
export * from './stable-ids.js';
export * from './fedavg.js';
export * from './fedcc-kmeans.js';
export * from './fedcc-maximin.js';
export * from './aligned-fedavg.js';

/** Every registered strategy by name, each a factory with default options (DESIGN section 3.2). */
export const STRATEGIES = {
  /** FedAvg, Eq. 8-9. */
  fedavg: () => createFedAvg(),
  /** FedCC-KMeans, Eq. 10-11, Euclidean on raw centroids (reference code). */
  'fedcc-kmeans': () => createFedCCKMeans(),
  /** FedCC-Maximin, Eq. 12, Euclidean on raw centroids (reference code). */
  'fedcc-maximin': () => createFedCCMaximin(),
  /** FedCC-KMeans on L2-normalised centroids, unit centres. */
  'fedcc-kmeans-cosine': () => createFedCCKMeans({ cosine: true }),
  /** FedCC-Maximin on L2-normalised centroids. */
  'fedcc-maximin-cosine': () => createFedCCMaximin({ cosine: true }),
  /** FedAvg with centroids matched to the previous global ones before averaging. */
  'aligned-fedavg': () => createAlignedFedAvg(),
} as const satisfies Record<string, () => Strategy>;

/** A registered strategy name. */
export type StrategyName = keyof typeof STRATEGIES;

/** Registered names, in registry order (for help text and config validation). */
export const STRATEGY_NAMES: readonly string[] = Object.freeze(Object.keys(STRATEGIES));

/** True when `name` is a registered strategy. */
export function isStrategyName(name: string): name is StrategyName {
  return Object.prototype.hasOwnProperty.call(STRATEGIES, name);
}

/**
 * A new instance of the registered strategy `name`, with default options.
 *
 * @throws ConfigError listing the registered names when `name` is unknown
 */
export function createStrategy(name: string): Strategy {
  if (!isStrategyName(name)) throw new ConfigError(`unknown strategy "${name}"; choose one of ${STRATEGY_NAMES.join(', ')}`);
  return STRATEGIES[name]();
}
