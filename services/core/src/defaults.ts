// Hyperparameter defaults, each with its source. Options objects elsewhere fall back to these.

export const TRAINING_DEFAULTS = {
  /** Code dimension D of the head (STEGO Cityscapes / FUSS paper: 70). */
  codeDim: 70,
  /** Query images per step (FUSS paper batch: 8). */
  queries: 8,
  /** Random negative supports per query (FUSS paper / STEGO neg_samples: 5). */
  negatives: 5,
  /** Nearest neighbours by pooled feature among which the positive partner is drawn (STEGO: 7). */
  neighbourCount: 7,
  /** Sampled correspondence mode: points per side (STEGO feature_samples: 11, i.e. 11 x 11 cells). */
  samplePoints: 11,
  /** Correspondence loss weights (STEGO Cityscapes config, used by FUSS): intra, inter, negative. */
  weights: { intra: 1.0, inter: 0.577, neg: 0.906 },
  /** Correspondence loss shifts (STEGO Cityscapes config, tuned for DINO ViT features). */
  stegoShifts: { intra: 0.458, inter: 0.175, neg: 0.314 },
  /** Channel dropout on the head input (STEGO: Dropout2d(p = 0.1)). */
  dropout: 0.1,
  /** Adam learning rates (STEGO): head 5e-4, centroids (cluster probe) 5e-3. */
  headLr: 5e-4,
  centroidLr: 5e-3,
  /** Centroid repulsion weight lambda of Eq. 5 (0 = STEGO's cluster probe). */
  lambda: 0,
  /** FedProx mu (FUSS appendix B). */
  proxMu: 0.001,
  /** MOON temperature and weight (FUSS appendix B). */
  moonTau: 0.5,
  moonWeight: 1,
} as const;
