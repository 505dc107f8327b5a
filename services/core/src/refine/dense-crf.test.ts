import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CRF_DEFAULTS } from '../defaults.js';
import { ConfigError, ShapeError } from '../errors.js';
import type { RgbImage } from '../image/image.js';
import { createRng, type Rng } from '../math/rng.js';
import { boxDownsample, refineWithCrf } from './crf-refine.js';
import { denseCrf, denseCrfOptions, type DenseCrfOptions } from './dense-crf.js';
import { PermutohedralLattice } from './permutohedral-lattice.js';

// Fixed so CI is reproducible; fast-check prints the seed and path of any failure.
const FC_SEED = 0xc2f;

/**
 * Brute-force mean-field reference: the same update as `denseCrf` with both kernels summed exactly
 * over every pair of pixels (O(N²)); only usable on tiny images.
 */
function referenceCrf(image: RgbImage, logits: Float32Array, k: number, options: Partial<DenseCrfOptions> = {}): Float64Array {
  const o = denseCrfOptions(options);
  const { width, height, data } = image;
  const n = width * height;
  const kernel = (i: number, j: number, xyStd: number, rgbStd?: number) => {
    const dx = (i % width) - (j % width);
    const dy = Math.floor(i / width) - Math.floor(j / width);
    let e = (dx * dx + dy * dy) / (2 * xyStd * xyStd);
    if (rgbStd !== undefined) {
      for (let c = 0; c < 3; c++) e += (data[i * 3 + c] - data[j * 3 + c]) ** 2 / (2 * rgbStd * rgbStd);
    }
    return Math.exp(-e);
  };
  const kg = new Float64Array(n * n);
  const kb = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      kg[i * n + j] = kernel(i, j, o.gaussianXyStd);
      kb[i * n + j] = kernel(i, j, o.bilateralXyStd, o.bilateralRgbStd);
    }
  }
  const norm = (m: Float64Array) => Float64Array.from({ length: n }, (_, i) => 1 / Math.sqrt(m.subarray(i * n, (i + 1) * n).reduce((a, b) => a + b, 0)));
  const ng = norm(kg);
  const nb = norm(kb);
  const softmax = (energy: Float64Array) => {
    const q = new Float64Array(n * k);
    for (let p = 0; p < n; p++) {
      const max = Math.max(...Array.from({ length: k }, (_, c) => energy[c * n + p]));
      let sum = 0;
      for (let c = 0; c < k; c++) sum += (q[c * n + p] = Math.exp(energy[c * n + p] - max));
      for (let c = 0; c < k; c++) q[c * n + p] /= sum;
    }
    return q;
  };
  let q = softmax(Float64Array.from(logits));
  const logProb = q.map((v) => Math.max(Math.log(v), Math.log(o.probabilityClip)));
  for (let it = 0; it < o.iterations; it++) {
    const energy = new Float64Array(n * k);
    for (let c = 0; c < k; c++) {
      for (let i = 0; i < n; i++) {
        let g = 0;
        let b = 0;
        for (let j = 0; j < n; j++) {
          g += kg[i * n + j] * ng[j] * q[c * n + j];
          b += kb[i * n + j] * nb[j] * q[c * n + j];
        }
        energy[c * n + i] = logProb[c * n + i] + o.gaussianWeight * ng[i] * g + o.bilateralWeight * nb[i] * b;
      }
    }
    q = softmax(energy);
  }
  return q;
}

/** A two-region image (warm left, cool right of a slanted edge) with mild noise, and its truth. */
function twoRegionImage(width: number, height: number, rng: Rng): { image: RgbImage; truth: Uint8Array } {
  const data = new Uint8Array(width * height * 3);
  const truth = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const p = y * width + x;
      const right = x > width * 0.4 + y * 0.3 ? 1 : 0;
      truth[p] = right;
      const base = right ? [40, 90, 200] : [210, 80, 50];
      for (let c = 0; c < 3; c++) data[p * 3 + c] = base[c] + Math.round(rng.normal() * 3);
    }
  }
  return { image: { width, height, data }, truth };
}

/** Logits [k, n] favouring the truth by `margin`, with each pixel flipped to a wrong class with probability `flip`. */
function noisyLogits(truth: Uint8Array, k: number, rng: Rng, margin: number, flip: number): Float32Array {
  const n = truth.length;
  const logits = new Float32Array(k * n);
  for (let p = 0; p < n; p++) {
    const favoured = rng.next() < flip ? (truth[p] + 1 + rng.int(k - 1)) % k : truth[p];
    for (let c = 0; c < k; c++) logits[c * n + p] = (c === favoured ? margin : 0) + rng.normal() * 0.1;
  }
  return logits;
}

function argmaxPlanes(q: ArrayLike<number>, k: number, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let p = 0; p < n; p++) {
    let best = 0;
    for (let c = 1; c < k; c++) if (q[c * n + p] > q[best * n + p]) best = c;
    out[p] = best;
  }
  return out;
}

function agreement(a: Uint8Array, b: Uint8Array): number {
  let same = 0;
  for (let i = 0; i < a.length; i++) if (a[i] === b[i]) same++;
  return same / a.length;
}

function meanAbsDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += Math.abs(a[i] - b[i]);
  return sum / a.length;
}

describe('denseCrf against a brute-force mean-field reference', () => {
  const rng = createRng(7);
  const { image, truth } = twoRegionImage(20, 14, rng);
  const k = 3;
  const n = truth.length;
  const logits = noisyLogits(truth, k, rng, 1.2, 0.25);
  // The reference's bilateral spatial std must be small enough for a 20x14 image to matter.
  const small = { bilateralXyStd: 6, bilateralRgbStd: 10 };

  it('matches it with the smoothness kernel alone (applied exactly, truncated at 3 sigma)', () => {
    for (const gaussianXyStd of [1, 2.5]) {
      const options = { gaussianXyStd, bilateralWeight: 0 };
      const fast = denseCrf(image, logits, k, options);
      const reference = referenceCrf(image, logits, k, options);
      // Truncation at 3 sigma drops about 1% of the kernel's mass near each pixel.
      for (let i = 0; i < fast.length; i++) expect(Math.abs(fast[i] - reference[i]), `Q[${i}]`).toBeLessThan(5e-3);
    }
  });

  it('matches it within the permutohedral lattice approximation with both kernels', () => {
    for (const options of [small, { ...small, iterations: 3 }, { ...small, gaussianWeight: 0, bilateralWeight: 8 }]) {
      const fast = denseCrf(image, logits, k, options);
      const reference = referenceCrf(image, logits, k, options);
      expect(meanAbsDifference(fast, reference)).toBeLessThan(0.03);
      expect(agreement(argmaxPlanes(fast, k, n), argmaxPlanes(reference, k, n))).toBeGreaterThanOrEqual(0.97);
    }
  });

  it('cleans a noisy labelling along the image edge, as the reference does', () => {
    const before = agreement(argmaxPlanes(logits, k, n), truth);
    const after = agreement(argmaxPlanes(denseCrf(image, logits, k, small), k, n), truth);
    expect(before).toBeLessThan(0.8);
    expect(after).toBeGreaterThan(0.97);
    expect(agreement(argmaxPlanes(referenceCrf(image, logits, k, small), k, n), truth)).toBeGreaterThan(0.97);
  });

  it('with 0 iterations returns softmax(logits)', () => {
    const q = denseCrf(image, logits, k, { iterations: 0 });
    const reference = referenceCrf(image, logits, k, { iterations: 0 });
    for (let i = 0; i < q.length; i++) expect(q[i]).toBeCloseTo(reference[i], 6);
  });
});

describe('denseCrf', () => {
  it('is deterministic: the same inputs give the same bits, whatever ran before', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 31 - 1 }), fc.integer({ min: 1, max: 12 }), fc.integer({ min: 1, max: 12 }), fc.integer({ min: 1, max: 6 }), (seed, width, height, k) => {
        const rng = createRng(seed);
        const image = { width, height, data: Uint8Array.from({ length: width * height * 3 }, () => rng.int(256)) };
        const logits = Float32Array.from({ length: k * width * height }, () => rng.normal() * 2);
        const first = denseCrf(image, logits, k);
        denseCrf({ ...image, data: image.data.map((v) => 255 - v) }, logits.map((v) => -v), k);
        const again = denseCrf(image, logits, k);
        expect(again).toEqual(first);
        for (let p = 0; p < width * height; p++) {
          let sum = 0;
          for (let c = 0; c < k; c++) sum += first[c * width * height + p];
          expect(sum).toBeCloseTo(1, 5);
        }
      }),
      { seed: FC_SEED, numRuns: 60 },
    );
  });

  it('defaults to the parameters of STEGO\'s crf.py', () => {
    expect(denseCrfOptions()).toEqual({ iterations: 10, gaussianWeight: 3, gaussianXyStd: 1, bilateralWeight: 4, bilateralXyStd: 67, bilateralRgbStd: 3, probabilityClip: 1e-5 });
    expect(CRF_DEFAULTS.scoreScale).toBe(2);
  });

  it('refuses bad shapes and options', () => {
    const image = { width: 4, height: 3, data: new Uint8Array(36) };
    expect(() => denseCrf(image, new Float32Array(10), 2)).toThrow(ShapeError);
    expect(() => denseCrf({ ...image, data: new Uint8Array(5) }, new Float32Array(24), 2)).toThrow(ShapeError);
    for (const bad of [{ iterations: -1 }, { iterations: 1.5 }, { gaussianXyStd: 0 }, { bilateralRgbStd: Number.NaN }, { bilateralWeight: -1 }, { probabilityClip: 0 }]) {
      expect(() => denseCrf(image, new Float32Array(24), 2, bad), JSON.stringify(bad)).toThrow(ConfigError);
    }
  });
});

describe('PermutohedralLattice', () => {
  it('approximates a normalised Gaussian filter (exact sums over all pairs)', () => {
    const rng = createRng(3);
    // 2-D: random points; 5-D: the features of an image (position and colour), as the CRF uses it.
    const { image } = twoRegionImage(24, 20, rng);
    const pixels = 24 * 20;
    const cases = [
      { dim: 2, points: 400, features: Float32Array.from({ length: 800 }, () => rng.next() * 6) },
      { dim: 5, points: pixels, features: Float32Array.from({ length: pixels * 5 }, (_, i) => (i % 5 === 0 ? (Math.floor(i / 5) % 24) / 4 : i % 5 === 1 ? Math.floor(i / 120) / 4 : image.data[Math.floor(i / 5) * 3 + (i % 5) - 2] / 8)) },
    ];
    for (const { dim, points, features } of cases) {
      const values = Float32Array.from({ length: points }, () => rng.normal());
      const lattice = PermutohedralLattice.build(features, points, dim);
      const filtered = lattice.filterInto(new Float32Array(points), values, 1);
      const ones = lattice.filterInto(new Float32Array(points), new Float32Array(points).fill(1), 1);
      let error = 0;
      let spread = 0;
      for (let i = 0; i < points; i++) {
        let num = 0;
        let den = 0;
        for (let j = 0; j < points; j++) {
          let d2 = 0;
          for (let c = 0; c < dim; c++) d2 += (features[i * dim + c] - features[j * dim + c]) ** 2;
          const w = Math.exp(-d2 / 2);
          num += w * values[j];
          den += w;
        }
        error += Math.abs(filtered[i] / ones[i] - num / den);
        spread += Math.abs(values[i] - num / den);
      }
      // The lattice's local averages of noise are far closer to the exact Gaussian averages than
      // the noise is to them.
      expect(error / spread, `dim ${dim}`).toBeLessThan(0.1);
    }
  });

  it('filters several channels as it filters each alone, and refuses wrong shapes', () => {
    const rng = createRng(4);
    const points = 50;
    const features = Float32Array.from({ length: points * 3 }, () => rng.next() * 4);
    const lattice = PermutohedralLattice.build(features, points, 3);
    const channels = 6;
    const input = Float32Array.from({ length: points * channels }, () => rng.normal());
    const together = lattice.filterInto(new Float32Array(points * channels), input, channels);
    for (let c = 0; c < channels; c++) {
      const alone = lattice.filterInto(new Float32Array(points), input.slice(c * points, (c + 1) * points), 1);
      for (let p = 0; p < points; p++) expect(together[c * points + p]).toBeCloseTo(alone[p], 6);
    }
    expect(() => lattice.filterInto(new Float32Array(3), input, channels)).toThrow(ShapeError);
    expect(() => PermutohedralLattice.build(new Float32Array(5), 2, 3)).toThrow(ShapeError);
  });
});

describe('refineWithCrf', () => {
  it('returns a class per pixel of the image and snaps coarse scores to the image edge', () => {
    const rng = createRng(9);
    const { image, truth } = twoRegionImage(64, 48, rng);
    // Scores on an 8x6 grid (stride 8): the edge is blurred over a whole cell.
    const k = 2;
    const h = 6;
    const w = 8;
    const cells = new Float32Array(k * h * w);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        let right = 0;
        for (let yy = y * 8; yy < y * 8 + 8; yy++) for (let xx = x * 8; xx < x * 8 + 8; xx++) right += truth[yy * 64 + xx];
        const share = right / 64;
        cells[y * w + x] = 0.5 - share; // cosine-like scores in [-0.5, 0.5]
        cells[h * w + y * w + x] = share - 0.5;
      }
    }
    const coarse = refineWithCrf(image, cells, k, h, w, { iterations: 0 });
    const refined = refineWithCrf(image, cells, k, h, w, { bilateralXyStd: 20, workingPixels: 64 * 48 });
    expect(refined.length).toBe(64 * 48);
    expect(agreement(Uint8Array.from(refined), truth)).toBeGreaterThan(agreement(Uint8Array.from(coarse), truth));
    expect(agreement(Uint8Array.from(refined), truth)).toBeGreaterThan(0.97);
    // A working size below the image's: the CRF runs on a box-downsampled copy, the mask keeps the image's size.
    const reduced = refineWithCrf(image, cells, k, h, w, { bilateralXyStd: 20, workingPixels: 400 });
    expect(reduced.length).toBe(64 * 48);
    expect(agreement(Uint8Array.from(reduced), truth)).toBeGreaterThan(0.9);
    expect(() => refineWithCrf(image, cells.subarray(1), k, h, w)).toThrow(ShapeError);
    expect(() => refineWithCrf(image, cells, k, h, w, { workingPixels: 0 })).toThrow(ConfigError);
  });

  it('box-downsamples by averaging whole and partial blocks', () => {
    const image = { width: 3, height: 2, data: Uint8Array.from([0, 0, 0, 10, 10, 10, 50, 60, 70, 20, 20, 20, 30, 30, 30, 100, 100, 100]) };
    expect(boxDownsample(image, 2)).toEqual({ width: 2, height: 1, data: Uint8Array.from([15, 15, 15, 75, 80, 85]) });
  });
});
