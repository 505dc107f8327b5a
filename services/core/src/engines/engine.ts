// The contract of a training engine: given the head, the centroids and one batch, return the loss and
// the gradient of every parameter. Engines differ only in how they compute (tfjs autodiff, or a
// hand-derived backward pass in one ONNX graph); optimisers, sampling and the loop are shared.
//
// The maths (DESIGN section 2; STEGO, Hamilton et al. 2022; FUSS paper Eq. 5-7):
//
// Head (1x1 convolutions = per-cell linear maps), X the [cells, C] features of one image:
//   X1 = X * mask1, X2 = X * mask2                     (channel dropout masks, one per image)
//   H  = relu(X2 W2^T + b2)                             [cells, C]
//   Z  = H W3^T + b3                                    nonlinear branch, [cells, D]
//   S  = X1 W1^T + b1 + Z                               code, [cells, D]
//
// Correspondence loss (Eq. 6) over pairs p = (a, b) of batch images:
//   Fa = featuresUnit[a], Fb = featuresUnit[b]          (centred, unit rows; no gradient)
//   F  = Fa Fb^T; Fc = F - rowmean(F) + mean(F)         [N, N]
//   Ua = S[a] / |S[a]|, Ub = S[b] / |S[b]|  (row-wise); C = Ua Ub^T
//   pairLoss_p = -mean_{n,m}( max(C, 0) * (Fc - shift_p) )
//   L_corr = sum_p pairWeight_p * pairLoss_p          (gradients flow into both Ua and Ub)
//
// Centroid loss (Eq. 5) on detached, unit codes u_n of the query images' cells, centroids M [K, D]:
//   Mh = M / |M| (rows); inner = u Mh^T; k(n) = argmax_k inner[n, k]
//   L_clu = -mean_n inner[n, k(n)] + lambda * mean_{k != l} <Mh_k, Mh_l>      (K > 1)
//
// MOON (appendix B), per query cell n: z = local representation, zg / zp = the same representation
// from the global / previous local head (no dropout, no gradient); with c(x, y) the cosine:
//   L_moon = weight * mean_n softplus( (c(z_n, zp_n) - c(z_n, zg_n)) / tau )
//   which equals -log( e^{c(z,zg)/tau} / (e^{c(z,zg)/tau} + e^{c(z,zp)/tau}) ).
//   scope 'nonlinear': z = Z (branch L2, L3); scope 'head': z = S.
//
// FedProx (appendix B): L_prox = mu / 2 * sum over scoped parameters of |theta - theta_global|^2
//   scope 'nonlinear': W2, b2, W3, b3; scope 'head': all six.
//
// Total: L = L_corr + L_clu + L_moon + L_prox. M receives gradient from L_clu only; the head from the rest.

/** Weights of the two-branch head. Row-major; W is [out, in] like a squeezed PyTorch 1x1 conv weight. */
export interface HeadParams {
  /** [D, C] */ l1Weight: Float32Array;
  /** [D] */ l1Bias: Float32Array;
  /** [C, C] */ l2Weight: Float32Array;
  /** [C] */ l2Bias: Float32Array;
  /** [D, C] */ l3Weight: Float32Array;
  /** [D] */ l3Bias: Float32Array;
}

export const HEAD_PARAM_NAMES = ['l1Weight', 'l1Bias', 'l2Weight', 'l2Bias', 'l3Weight', 'l3Bias'] as const;
export type HeadParamName = (typeof HEAD_PARAM_NAMES)[number];
/** The parameters of the nonlinear branch (FedProx and MOON default scope). */
export const NONLINEAR_PARAM_NAMES: readonly HeadParamName[] = ['l2Weight', 'l2Bias', 'l3Weight', 'l3Bias'];

export interface HeadShape {
  /** Backbone feature channels. */
  channels: number;
  /** Code dimension (70 in the paper). */
  codeDim: number;
}

/** One training batch, built by the trainer and identical for every engine. */
export interface StepBatch {
  /** Number of images I in the batch (queries first, then their partners). */
  images: number;
  /** Cells per image N (sampled points or the full grid). */
  cells: number;
  /** Feature channels C. */
  channels: number;
  /** The first `queries` images are the query images (centroid loss and MOON use their cells). */
  queries: number;
  /** Head input, raw backbone features. [I, N, C] */
  features: Float32Array;
  /** Features for the correlation F only: centred (participant mean removed) and unit rows. [I, N, C] */
  featuresUnit: Float32Array;
  /** Channel dropout masks (0 or 1/(1-p); all ones without dropout) for the linear and nonlinear branch. [I, C] */
  dropMask1: Float32Array;
  dropMask2: Float32Array;
  /** Pairs: image indices a and b, weight and shift of each pair. [P] */
  pairA: Int32Array;
  pairB: Int32Array;
  pairWeight: Float32Array;
  pairShift: Float32Array;
}

export type RegularizerScope = 'nonlinear' | 'head';

export interface StepConfig {
  /** Number of centroids K. */
  k: number;
  /** Weight of the centroid-repulsion term of Eq. 5 (0: STEGO's cluster probe). */
  lambda: number;
  moon?: { globalHead: HeadParams; previousHead: HeadParams; tau: number; weight: number; scope: RegularizerScope };
  prox?: { globalHead: HeadParams; mu: number; scope: RegularizerScope };
}

export interface StepResult {
  loss: number;
  parts: { corr: number; cluster: number; moon: number; prox: number };
  /** Gradient of `loss` for each head parameter. */
  headGrad: HeadParams;
  /** Gradient of `loss` for the centroids. [K, D] */
  centroidGrad: Float32Array;
  /** How many query cells chose each centroid (for the assignment entropy). [K] */
  clusterCounts: Int32Array;
}

export interface TrainingEngine {
  /** `tfjs` or `onnx`. */
  readonly name: string;
  /** A line describing the backend in use, for logs (e.g. "onnx (onnxruntime-node, cpu, 2 threads)"). */
  readonly description: string;
  /** Where the step runs: an onnxruntime provider (cpu, webgpu, cuda) for `onnx`; `cpu` or `gpu` for tfjs. */
  readonly device: string;
  step(head: HeadParams, centroids: Float32Array, shape: HeadShape, batch: StepBatch, config: StepConfig): Promise<StepResult>;
  /** Codes of features for inference, no dropout. features [cells, C] -> [cells, D]. */
  codes(head: HeadParams, shape: HeadShape, features: Float32Array, cells: number): Promise<Float32Array>;
  dispose(): Promise<void>;
}
