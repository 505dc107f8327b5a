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

/**
 * Dense CRF refinement (Krähenbühl and Koltun 2011) as STEGO's evaluation runs it
 * (mhamilton723/STEGO `src/crf.py`: MAX_ITER = 10, POS_W = 3, POS_XY_STD = 1, Bi_W = 4,
 * Bi_XY_STD = 67, Bi_RGB_STD = 3), on probabilities `softmax(2 · cos(code, centroid))` (STEGO's
 * `cluster_probe(code, alpha = 2, log_probs = True)`), with pydensecrf's `unary_from_softmax` clip.
 */
export const CRF_DEFAULTS = {
  /** Mean-field iterations (MAX_ITER). */
  iterations: 10,
  /** Weight of the smoothness (Gaussian, position only) kernel (POS_W). */
  gaussianWeight: 3,
  /** Its standard deviation in pixels (POS_XY_STD). */
  gaussianXyStd: 1,
  /** Weight of the appearance (bilateral: position and colour) kernel (Bi_W). */
  bilateralWeight: 4,
  /** Its positional standard deviation in pixels (Bi_XY_STD). */
  bilateralXyStd: 67,
  /** Its colour standard deviation in 8-bit RGB units (Bi_RGB_STD). */
  bilateralRgbStd: 3,
  /** Scale of the cosine scores before the softmax (STEGO's cluster probe alpha at evaluation). */
  scoreScale: 2,
  /** Probabilities are clipped below at this before -log (pydensecrf `unary_from_softmax` clip). */
  probabilityClip: 1e-5,
  /**
   * Not STEGO's (it refines at full resolution): the CRF works on at most this many pixels, the image
   * box-downsampled by an integer factor (480x360 CamVid: factor 5, 96x72), which bounds its time per
   * image. On CamVid val (bench/RESULTS.md) factor 5 keeps all but 0.1-0.2 of factor 4's mIoU gain at
   * 60% of its time, and is within 150 ms per image on the shared 2-core machine.
   */
  workingPixels: 8_000,
} as const;
