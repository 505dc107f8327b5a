// Unsupervised model selection and stopping (no labels): each participant keeps a share of its images
// out of training and scores every global model it receives on them with the training loss (Eq. 7 at
// fixed batches, no dropout), before training on it. The federation's score of model version v is the
// median of its participants' scores (a minority of participants cannot steer it), known once the
// round that started from v is aggregated. The selected model is the best-scored version, except that
// while the latest score is the best so far the newest model is taken (training still improves);
// with a patience, the federation stops once that many scored versions in a row failed to beat the best.
// The simulator and the aggregation server both decide with these functions.

import { ConfigError } from '../errors.js';
import { createRng, shuffled } from '../math/rng.js';

export interface SelectionRule {
  /** The score: the loss of Eq. 7 on held-out images (lower is better). */
  metric: 'loss';
  /** Share of each participant's images held out of training (at least one, when it has two or more). */
  holdout: number;
  /** Stop after this many scored versions without a new best (0: never stop early). */
  patience: number;
}

export const SELECTION_DEFAULTS = { holdout: 0.1, patience: 2 } as const;

export const SELECTION_HELP = 'none, or loss[:holdout[:patience]] (default loss:0.1:2)';

/** The pattern of a rule's text form (API schemas validate it before parseSelectionRule). */
export const SELECTION_PATTERN = '^(none|loss(:[0-9.]+(:[0-9]+)?)?)$';

/**
 * Parses `none` or `loss[:holdout[:patience]]` (0 < holdout < 1, patience an integer >= 0).
 *
 * @returns undefined for `none`
 * @throws ConfigError naming the accepted forms
 */
export function parseSelectionRule(text: string): SelectionRule | undefined {
  const [name, ...args] = text.trim().split(':');
  if (name === 'none' && args.length === 0) return undefined;
  if (name === 'loss' && args.length <= 2) {
    const holdout = args.length > 0 ? Number(args[0]) : SELECTION_DEFAULTS.holdout;
    const patience = args.length > 1 ? Number(args[1]) : SELECTION_DEFAULTS.patience;
    if (!(holdout > 0 && holdout < 1)) throw new ConfigError(`model selection "${text}": the held-out share must be between 0 and 1`);
    if (!Number.isSafeInteger(patience) || patience < 0) throw new ConfigError(`model selection "${text}": the patience must be an integer >= 0`);
    return { metric: 'loss', holdout, patience };
  }
  throw new ConfigError(`unknown model selection "${text}"; choose ${SELECTION_HELP}`);
}

/** The canonical text of a rule (what a federation stores). */
export function formatSelectionRule(rule: SelectionRule | undefined): string {
  return rule ? `${rule.metric}:${rule.holdout}:${rule.patience}` : 'none';
}

/**
 * A participant's images split into training and held-out ones, by a seeded draw of
 * `max(1, round(fraction * n))` images (none from a participant with fewer than two). Both lists keep
 * the input order.
 */
export function splitHoldout<T>(items: readonly T[], fraction: number, seed: number): { train: T[]; heldOut: T[] } {
  if (items.length < 2) return { train: [...items], heldOut: [] };
  const count = Math.min(items.length - 1, Math.max(1, Math.round(fraction * items.length)));
  const held = new Set(shuffled(items.map((_, i) => i), createRng(seed)).slice(0, count));
  return { train: items.filter((_, i) => !held.has(i)), heldOut: items.filter((_, i) => held.has(i)) };
}

/** The federation's score of a model from its participants' scores: their median (undefined for none). */
export function federationScore(scores: readonly number[]): number | undefined {
  const finite = scores.filter(Number.isFinite).slice().sort((a, b) => a - b);
  if (finite.length === 0) return undefined;
  const mid = Math.floor(finite.length / 2);
  return finite.length % 2 ? finite[mid] : (finite[mid - 1] + finite[mid]) / 2;
}

/** What the rule decides after a round. */
export interface SelectionDecision {
  /** The model version to use. */
  selected: number;
  /** The best-scored version, if any is scored. */
  best?: number;
  /** True when the federation should stop now (patience exhausted). */
  stop: boolean;
}

/**
 * The selected version and whether to stop, from the scores known so far (`scores`: version -> score,
 * lower is better; versions up to `lastVersion - 1` can be scored) and the newest version.
 */
export function selectVersion(scores: ReadonlyMap<number, number>, lastVersion: number, patience: number): SelectionDecision {
  const versions = [...scores.keys()].sort((a, b) => a - b);
  if (versions.length === 0) return { selected: lastVersion, stop: false };
  let best = versions[0];
  for (const v of versions) if (scores.get(v)! < scores.get(best)!) best = v;
  const latest = versions.at(-1)!;
  const sinceBest = versions.filter((v) => v > best).length;
  return { selected: best === latest ? lastVersion : best, best, stop: patience > 0 && sinceBest >= patience };
}
