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

/**
 * The federation configuration used where none is given (`fuss simulate`, `fuss federation create` and
 * `POST /federations`): the best measured on the unseen-domain protocol of issue 16 (bench/RESULTS.md,
 * "Federation on a domain no participant trained on": CamVid, leave one sequence out, 3 seeds).
 * - FedCC-Maximin on cosine-normalised centroids: the reference code assigns pixels by cosine, so
 *   merging directions rather than raw vectors keeps the merge in the space the model is used in;
 * - FedAvgM (server momentum 0.9 on the head delta, Hsu et al. 2019);
 * - size weights kept (module W): unlike on the in-domain split, equal weights lose on the unseen one;
 * - the norm clip against hostile updates (issue 15), which costs nothing measurable when all are honest.
 */
export const FEDERATION_DEFAULTS = {
  strategy: 'fedcc-maximin-cosine',
  modules: { weighted: true, head: true, centroids: true },
  robust: 'clip',
  regularizer: 'none',
  serverOptimizer: 'fedavgm:1:0.9',
  localOptimizer: 'reset',
  lrSchedule: 'constant',
  augment: 'none',
  selection: 'none',
} as const;

/** The server optimiser of a federation that names none: the default where it can step (module E on), else none. */
export function defaultServerOptimizer(modules: { head: boolean }): string {
  return modules.head ? FEDERATION_DEFAULTS.serverOptimizer : 'none';
}

/**
 * The FUSS paper's settings exactly (`--preset paper`): FedCC-KMeans with modules W+E+C, no robust rule,
 * no regularizer, no server optimiser, Adam restarted every round at a constant rate, no augmented
 * views, no model selection.
 */
export const PAPER_FEDERATION = {
  strategy: 'fedcc-kmeans',
  modules: { weighted: true, head: true, centroids: true },
  robust: 'none',
  regularizer: 'none',
  serverOptimizer: 'none',
  localOptimizer: 'reset',
  lrSchedule: 'constant',
  augment: 'none',
  selection: 'none',
} as const;
