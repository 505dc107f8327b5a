// Dense CRF refinement of a segmentation (Krähenbühl and Koltun 2011, "Efficient Inference in Fully
// Connected CRFs with Gaussian Edge Potentials"), as STEGO's evaluation applies it: mean-field
// inference with a smoothness kernel (position) and an appearance kernel (position and colour), both
// with symmetric normalisation and Potts compatibility, as pydensecrf's DenseCRF2D defaults.
// Deterministic: no random numbers, a fixed order of every sum.

import { CRF_DEFAULTS } from '../defaults.js';
import { ConfigError, ShapeError } from '../errors.js';
import type { RgbImage } from '../image/image.js';
import { PermutohedralLattice } from './permutohedral-lattice.js';

/** Parameters of {@link denseCrf}; every one defaults to {@link CRF_DEFAULTS} (STEGO's `crf.py`). */
export interface DenseCrfOptions {
  iterations: number;
  gaussianWeight: number;
  gaussianXyStd: number;
  bilateralWeight: number;
  bilateralXyStd: number;
  bilateralRgbStd: number;
  probabilityClip: number;
}

/** The smoothness kernel is applied exactly, truncated at this many standard deviations. */
export const GAUSSIAN_TRUNCATION = 3;

/** Options with defaults filled in and checked. */
export function denseCrfOptions(options: Partial<DenseCrfOptions> = {}): DenseCrfOptions {
  const merged = {
    iterations: options.iterations ?? CRF_DEFAULTS.iterations,
    gaussianWeight: options.gaussianWeight ?? CRF_DEFAULTS.gaussianWeight,
    gaussianXyStd: options.gaussianXyStd ?? CRF_DEFAULTS.gaussianXyStd,
    bilateralWeight: options.bilateralWeight ?? CRF_DEFAULTS.bilateralWeight,
    bilateralXyStd: options.bilateralXyStd ?? CRF_DEFAULTS.bilateralXyStd,
    bilateralRgbStd: options.bilateralRgbStd ?? CRF_DEFAULTS.bilateralRgbStd,
    probabilityClip: options.probabilityClip ?? CRF_DEFAULTS.probabilityClip,
  };
  if (!Number.isInteger(merged.iterations) || merged.iterations < 0 || merged.iterations > 100) {
    throw new ConfigError(`CRF iterations must be an integer in 0..100, got ${merged.iterations}`);
  }
  for (const key of ['gaussianWeight', 'bilateralWeight'] as const) {
    if (!Number.isFinite(merged[key]) || merged[key] < 0) throw new ConfigError(`CRF ${key} must be a finite number >= 0, got ${merged[key]}`);
  }
  if (!(merged.gaussianXyStd > 0 && merged.gaussianXyStd <= 50)) throw new ConfigError(`CRF gaussianXyStd must be in (0, 50] pixels, got ${merged.gaussianXyStd}`);
  for (const key of ['bilateralXyStd', 'bilateralRgbStd'] as const) {
    if (!(merged[key] > 0 && Number.isFinite(merged[key]))) throw new ConfigError(`CRF ${key} must be a finite number > 0, got ${merged[key]}`);
  }
  if (!(merged.probabilityClip > 0 && merged.probabilityClip < 1)) throw new ConfigError(`CRF probabilityClip must be in (0, 1), got ${merged.probabilityClip}`);
  return merged;
}

/**
 * Mean-field inference of the fully connected CRF over the pixels of `image`. With `U = -log p`
 * (p = softmax(logits), clipped below at `probabilityClip`), each iteration sets
 * `Q_i ∝ exp(-U_i + w_g · Ĝ(Q)_i + w_b · B̂(Q)_i)` where `Ĝ(Q)_i = n_i Σ_j k_g(i, j) n_j Q_j` with
 * `n_i = (Σ_j k_g(i, j))^-1/2` (likewise B̂ with k_b), `k_g = exp(-|p_i - p_j|² / 2θ_g²)` and
 * `k_b = exp(-|p_i - p_j|² / 2θ_α² - |I_i - I_j|² / 2θ_β²)`, the sums including j = i. This is
 * pydensecrf's `inference` with Potts compatibility and NORMALIZE_SYMMETRIC kernels.
 *
 * The smoothness kernel is applied exactly (separable, truncated at {@link GAUSSIAN_TRUNCATION}
 * standard deviations); the appearance kernel through a {@link PermutohedralLattice}, as pydensecrf.
 *
 * @param image - the image, width x height RGB
 * @param logits - [k, height, width] label planes of scores (any scale; softmax over k gives p)
 * @returns [k, height, width] marginals Q (each pixel's values sum to 1)
 * @throws ShapeError when `logits` does not hold `k * width * height` values
 * @throws ConfigError for out-of-range options
 */
export function denseCrf(image: RgbImage, logits: Float32Array, k: number, options: Partial<DenseCrfOptions> = {}): Float32Array {
  const settings = denseCrfOptions(options);
  const { width, height } = image;
  const n = width * height;
  if (!Number.isInteger(k) || k < 1) throw new ShapeError(`CRF needs k >= 1 labels, got ${k}`);
  if (image.data.length !== n * 3) throw new ShapeError(`CRF image holds ${image.data.length} values, expected ${width} x ${height} x 3`);
  if (logits.length !== n * k) throw new ShapeError(`CRF logits hold ${logits.length} values, expected [${k}, ${height}, ${width}]`);

  const q = new Float32Array(n * k);
  const scratch = new Float32Array(n * 2);
  softmaxPlanesInto(q, logits, n, k, scratch);
  if (settings.iterations === 0) return q;
  const logClip = Math.log(settings.probabilityClip);
  const logProb = q.map((v) => Math.max(Math.log(v), logClip));

  const smooth = new SmoothnessKernel(width, height, settings.gaussianXyStd);
  const appearance = appearanceLattice(image, settings.bilateralXyStd, settings.bilateralRgbStd);
  const appearanceNorm = symmetricNorm(appearance, n);
  const smoothed = new Float32Array(n * k);
  const filtered = new Float32Array(n * k);
  const { gaussianWeight: wg, bilateralWeight: wb } = settings;
  for (let iteration = 0; iteration < settings.iterations; iteration++) {
    if (wg > 0) smooth.filterInto(smoothed, q, k);
    if (wb > 0) appearance.filterInto(filtered, q, k, appearanceNorm);
    for (let i = 0; i < n * k; i++) q[i] = logProb[i] + wg * smoothed[i] + wb * filtered[i];
    softmaxPlanesInto(q, q, n, k, scratch);
  }
  return q;
}

/** The appearance kernel's lattice over (x / θ_α, y / θ_α, r / θ_β, g / θ_β, b / θ_β). */
function appearanceLattice(image: RgbImage, xyStd: number, rgbStd: number): PermutohedralLattice {
  const { width, height, data } = image;
  const n = width * height;
  const features = new Float32Array(n * 5);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const p = y * width + x;
      features[p * 5] = x / xyStd;
      features[p * 5 + 1] = y / xyStd;
      features[p * 5 + 2] = data[p * 3] / rgbStd;
      features[p * 5 + 3] = data[p * 3 + 1] / rgbStd;
      features[p * 5 + 4] = data[p * 3 + 2] / rgbStd;
    }
  }
  return PermutohedralLattice.build(features, n, 5);
}

/** `(Σ_j k(i, j))^-1/2` per point, the kernel applied to ones (pydensecrf NORMALIZE_SYMMETRIC). */
function symmetricNorm(lattice: PermutohedralLattice, n: number): Float32Array {
  const sums = lattice.filterInto(new Float32Array(n), new Float32Array(n).fill(1), 1);
  return sums.map((s) => 1 / Math.sqrt(s + 1e-20));
}

/**
 * The smoothness kernel `exp(-|p_i - p_j|² / 2θ²)` with symmetric normalisation, applied exactly as
 * two 1-D passes per plane (the kernel is separable), truncated at {@link GAUSSIAN_TRUNCATION} θ.
 */
class SmoothnessKernel {
  private readonly taps: Float64Array;
  private readonly radius: number;
  /** [height, width] normalisation `(Σ_j k(i, j))^-1/2`: separable, `1 / sqrt(sumX[x] · sumY[y])`. */
  private readonly norm: Float32Array;
  private readonly rows: Float32Array;
  private readonly scaled: Float32Array;

  constructor(
    private readonly width: number,
    private readonly height: number,
    std: number,
  ) {
    // Taps beyond GAUSSIAN_TRUNCATION θ are dropped; below θ = 1/3 pixel none is left (a neighbour's
    // weight would be under e^-4.5 = 1.1%), and the kernel is the identity.
    this.radius = Math.floor(GAUSSIAN_TRUNCATION * std + 1e-9);
    this.taps = Float64Array.from({ length: this.radius + 1 }, (_, t) => Math.exp(-(t * t) / (2 * std * std)));
    const sumX = this.windowSums(width);
    const sumY = this.windowSums(height);
    this.norm = new Float32Array(width * height);
    for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) this.norm[y * width + x] = 1 / Math.sqrt(sumX[x] * sumY[y]);
    this.rows = new Float32Array(width * height);
    this.scaled = new Float32Array(width * height);
  }

  /** Σ of the taps inside [0, size) around each position. */
  private windowSums(size: number): Float64Array {
    const sums = new Float64Array(size);
    for (let i = 0; i < size; i++) {
      for (let t = -this.radius; t <= this.radius; t++) if (i + t >= 0 && i + t < size) sums[i] += this.taps[Math.abs(t)];
    }
    return sums;
  }

  /** `out_i = n_i Σ_j k(i, j) n_j in_j` for each of `planes` [height, width] planes. */
  filterInto(out: Float32Array, input: Float32Array, planes: number): void {
    const { width, height, taps, radius, norm, rows, scaled } = this;
    const n = width * height;
    if (radius === 0) {
      out.set(input.subarray(0, n * planes));
      return;
    }
    // Tap by tap over whole rows and columns, so every loop streams through memory.
    for (let c = 0; c < planes; c++) {
      const plane = out.subarray(c * n, (c + 1) * n);
      const source = input.subarray(c * n, (c + 1) * n);
      for (let p = 0; p < n; p++) {
        scaled[p] = norm[p] * source[p];
        rows[p] = taps[0] * scaled[p];
      }
      for (let t = 1; t <= radius && t < width; t++) {
        const tap = taps[t];
        for (let y = 0; y < height; y++) {
          const row = y * width;
          for (let x = row; x < row + width - t; x++) {
            rows[x] += tap * scaled[x + t];
            rows[x + t] += tap * scaled[x];
          }
        }
      }
      for (let p = 0; p < n; p++) plane[p] = taps[0] * rows[p];
      for (let t = 1; t <= radius && t < height; t++) {
        const tap = taps[t];
        const shift = t * width;
        for (let p = 0; p < n - shift; p++) {
          plane[p] += tap * rows[p + shift];
          plane[p + shift] += tap * rows[p];
        }
      }
      for (let p = 0; p < n; p++) plane[p] *= norm[p];
    }
  }
}

/**
 * Softmax over the `k` planes of [k, n] values, per pixel, into `out` (may alias `input`).
 * `scratch` holds 2n values (the running max and sum).
 */
function softmaxPlanesInto(out: Float32Array, input: Float32Array, n: number, k: number, scratch: Float32Array): void {
  const max = scratch.subarray(0, n).fill(-Infinity);
  const sum = scratch.subarray(n, 2 * n).fill(0);
  for (let c = 0; c < k; c++) {
    const base = c * n;
    for (let p = 0; p < n; p++) if (input[base + p] > max[p]) max[p] = input[base + p];
  }
  for (let c = 0; c < k; c++) {
    const base = c * n;
    for (let p = 0; p < n; p++) {
      const e = expNonPositive(input[base + p] - max[p]);
      out[base + p] = e;
      sum[p] += e;
    }
  }
  for (let p = 0; p < n; p++) sum[p] = 1 / sum[p];
  for (let c = 0; c < k; c++) {
    const base = c * n;
    for (let p = 0; p < n; p++) out[base + p] *= sum[p];
  }
}

/** exp(-i / 64) for i = 0..EXP_TABLE_END; below -EXP_TABLE_END / 64 (= -80) exp is taken as 0. */
const EXP_STEPS = 64;
const EXP_TABLE_END = 80 * EXP_STEPS;
const EXP_TABLE = Float64Array.from({ length: EXP_TABLE_END + 1 }, (_, i) => Math.exp(-i / EXP_STEPS));

/**
 * exp(x) for x <= 0, 3-4x faster than Math.exp here: a table at steps of 1/64 times a cubic Taylor
 * correction (relative error below 3e-9, far under float32's 6e-8). The softmax is most of a
 * mean-field iteration's exps; values below e^-80 relative to the largest do not matter.
 */
function expNonPositive(x: number): number {
  const u = -x * EXP_STEPS;
  if (!(u >= 0 && u < EXP_TABLE_END)) return u >= EXP_TABLE_END ? 0 : Math.exp(x);
  const i = u | 0;
  const r = (i - u) / EXP_STEPS; // x = -i / 64 + r, r in (-1/64, 0]
  return EXP_TABLE[i] * (1 + r * (1 + r * (0.5 + r / 6)));
}
