// Seeds of a federation's random streams, derived from the federation seed. The in-process simulator,
// the aggregation server and the participant SDK all take them from here, so a federation run over
// HTTP draws the same numbers as the same federation simulated in one process.

/** Shift calibration of participant `index` (its own feature correlations). */
export function shiftCalibrationSeed(federationSeed: number, index: number): number {
  return federationSeed * 7919 + index;
}

/** Local training (batch sampling, dropout) of participant `index` in round `round`. */
export function localTrainingSeed(federationSeed: number, round: number, index: number): number {
  return federationSeed * 1_000_003 + round * 1009 + index;
}

/** The strategy's own randomness (k-means restarts of FedCC) in round `round`. */
export function aggregationSeed(federationSeed: number, round: number): number {
  return federationSeed * 31 + round;
}

/** Stable id of participant `index` in strategies, which order updates by it. */
export function participantClientId(index: number): string {
  return `client-${index}`;
}

/** The draw of participant `index`'s held-out images (model selection). */
export function holdoutSeed(federationSeed: number, index: number): number {
  return federationSeed * 7907 + index;
}

/** The batches participant `index` scores models with on its held-out images: the same every round. */
export function validationSeed(federationSeed: number, index: number): number {
  return federationSeed * 7901 + index;
}
