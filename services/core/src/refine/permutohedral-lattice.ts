// The permutohedral lattice (Adams, Baek and Davis 2010): fast high-dimensional Gaussian filtering by
// splatting every point onto the d+1 vertices of its enclosing simplex, blurring along the lattice's
// d+1 axes with a [1 2 1] kernel, and slicing back. The dense CRF (Krähenbühl and Koltun 2011) runs
// its bilateral kernel through it. Layout and constants follow Krähenbühl's permutohedral.cpp (the
// code pydensecrf wraps), so results match the reference within the lattice's own approximation.

import { ShapeError } from '../errors.js';

/** Channels filtered together (see `filterInto`). */
const GROUP = 4;

/**
 * A lattice built once for a set of points (features already divided by their standard deviations),
 * then applied to any number of value arrays over those points.
 *
 * `filterInto` approximates `out[i] = Σ_j exp(-|f_i - f_j|² / 2) in[j]` (j = i included) up to a
 * near-constant factor; the dense CRF's symmetric normalisation cancels it.
 */
export class PermutohedralLattice {
  /** Number of points N. */
  readonly points: number;
  /** Feature dimension d. */
  readonly dim: number;
  /** Lattice vertices M touched by the points. */
  readonly vertices: number;
  /** [N, d+1]: vertex index + 1 of each point's simplex corners (0 is an always-zero slot). */
  private readonly offsets: Int32Array;
  /** [N, d+1]: barycentric weight of each corner. */
  private readonly weights: Float32Array;
  /** [d+1, M, 2]: vertex index + 1 of the two neighbours along each lattice axis, 0 when absent. */
  private readonly neighbours: Int32Array;
  /** Lattice values of one group of channels, [M + 1, GROUP], and the blur's second buffer. */
  private values = new Float32Array(0);
  private next = new Float32Array(0);

  private constructor(points: number, dim: number, vertices: number, offsets: Int32Array, weights: Float32Array, neighbours: Int32Array) {
    this.points = points;
    this.dim = dim;
    this.vertices = vertices;
    this.offsets = offsets;
    this.weights = weights;
    this.neighbours = neighbours;
  }

  /**
   * Builds the lattice of `points` feature vectors.
   *
   * @param features - [points, dim] row-major, each coordinate divided by its kernel standard deviation
   * @throws ShapeError when `features.length !== points * dim` or a size is not a positive integer
   */
  static build(features: Float32Array, points: number, dim: number): PermutohedralLattice {
    if (!Number.isInteger(points) || points < 1 || !Number.isInteger(dim) || dim < 1 || dim > 16) {
      throw new ShapeError(`lattice needs points >= 1 and 1 <= dim <= 16, got ${points} and ${dim}`);
    }
    if (features.length !== points * dim) throw new ShapeError(`lattice features have ${features.length} values, expected [${points}, ${dim}]`);
    // The work is in plain functions: V8 optimises a loop best in a function called with its inputs
    // (a large method entered once per image would run partly unoptimised every time).
    const table = new VertexTable(dim, points); // grows when the points touch more vertices
    const offsets = new Int32Array(points * (dim + 1));
    const weights = new Float32Array(points * (dim + 1));
    locateSimplices(features, points, dim, table, offsets, weights);
    const vertices = table.size;
    const neighbours = findNeighbours(table, dim);
    return new PermutohedralLattice(points, dim, vertices, offsets, weights, neighbours);
  }

  /**
   * Filters `channels` planes of values over the points: splat, blur along every axis, slice. With
   * `scale`, computes `scale[i] · Σ_j k(i, j) scale[j] in[j]` (the symmetric normalisation of the
   * dense CRF) at no extra cost. Writes into `out` and returns it.
   *
   * @param out - [channels, points], overwritten
   * @param input - [channels, points] row-major (channel planes, like an image's CHW)
   * @param scale - [points] per-point factor applied before and after filtering
   */
  filterInto(out: Float32Array, input: Float32Array, channels: number, scale?: Float32Array): Float32Array {
    const { points, offsets, weights, neighbours, vertices } = this;
    const d1 = this.dim + 1;
    if (input.length !== points * channels || out.length !== points * channels) {
      throw new ShapeError(`lattice filter needs [${channels}, ${points}] arrays, got ${input.length} and ${out.length} values`);
    }
    if (scale && scale.length !== points) throw new ShapeError(`lattice scale has ${scale.length} values, expected ${points}`);
    if (this.values.length < (vertices + 1) * GROUP) this.values = new Float32Array((vertices + 1) * GROUP);
    if (this.next.length < (vertices + 1) * GROUP) this.next = new Float32Array((vertices + 1) * GROUP);
    // Krähenbühl's constant making the lattice's total weight match the Gaussian's.
    const alpha = 1 / (1 + 2 ** -this.dim);
    // Channels go through in groups of GROUP, interleaved per vertex: one read of the indices and
    // weights serves the whole group, and a group's lattice values stay in cache. Slot 0 is the zero
    // vertex that absent neighbours point to; a short last group computes zeros in its spare lanes.
    for (let g = 0; g < channels; g += GROUP) {
      const lanes = Math.min(GROUP, channels - g);
      let values = this.values;
      let next = this.next;
      values.fill(0, 0, (vertices + 1) * GROUP);
      next.fill(0, 0, GROUP);
      splatGroup(values, input, g * points, lanes, points, d1, offsets, weights, scale ?? ONE);
      for (let axis = 0; axis < d1; axis++) {
        blurAxis(next, values, neighbours, axis * vertices * 2, vertices);
        const swap = values;
        values = next;
        next = swap;
      }
      sliceGroup(out, values, g * points, lanes, points, d1, offsets, weights, scale ?? ONE, alpha);
    }
    return out;
  }
}

/**
 * For every point, the d+1 corners of its enclosing simplex (inserted into `table`, stored as
 * index + 1 in `offsets`) and its barycentric weights (Adams et al. 2010, pp. 5-10).
 */
function locateSimplices(features: Float32Array, points: number, d: number, table: VertexTable, offsets: Int32Array, weights: Float32Array): void {
  const d1 = d + 1;
  // Canonical simplex: canonical[r * d1 + i] is the offset of coordinate i in the remainder-r corner.
  const canonical = new Int32Array(d1 * d1);
  for (let r = 0; r <= d; r++) {
    for (let i = 0; i <= d - r; i++) canonical[r * d1 + i] = r;
    for (let i = d - r + 1; i <= d; i++) canonical[r * d1 + i] = r - d1;
  }
  // Elevation onto the hyperplane x·1 = 0 (p. 5), scaled so that the blur's standard deviation is 1
  // in feature units (p. 6).
  const invStdDev = Math.sqrt(2 / 3) * d1;
  const scale = new Float64Array(d);
  for (let i = 0; i < d; i++) scale[i] = invStdDev / Math.sqrt((i + 1) * (i + 2));
  const elevated = new Float64Array(d1);
  const rem0 = new Int32Array(d1);
  const rank = new Int32Array(d1);
  const barycentric = new Float64Array(d + 2);
  const key = new Int32Array(d);

  for (let p = 0; p < points; p++) {
    const f = p * d;
    let sum = 0;
    for (let j = d; j > 0; j--) {
      const cf = features[f + j - 1] * scale[j - 1];
      elevated[j] = sum - j * cf;
      sum += cf;
    }
    elevated[0] = sum;
    // Nearest remainder-0 lattice point, coordinate by coordinate.
    let coordinateSum = 0;
    for (let i = 0; i <= d; i++) {
      const v = elevated[i] / d1;
      const up = (Math.ceil(v) * d1) | 0;
      const down = (Math.floor(v) * d1) | 0;
      rem0[i] = up - elevated[i] < elevated[i] - down ? up : down;
      coordinateSum += rem0[i];
      rank[i] = 0;
    }
    coordinateSum = (coordinateSum / d1) | 0;
    // rank[i]: position of coordinate i's residual in decreasing order.
    for (let i = 0; i < d; i++) {
      const di = elevated[i] - rem0[i];
      for (let j = i + 1; j <= d; j++) {
        if (di < elevated[j] - rem0[j]) rank[i]++;
        else rank[j]++;
      }
    }
    // Bring the point back onto the plane when the rounding left it off (coordinateSum != 0).
    for (let i = 0; i <= d; i++) {
      rank[i] += coordinateSum;
      if (rank[i] < 0) {
        rank[i] += d1;
        rem0[i] += d1;
      } else if (rank[i] > d) {
        rank[i] -= d1;
        rem0[i] -= d1;
      }
    }
    // Barycentric coordinates (p. 10).
    for (let i = 0; i < d + 2; i++) barycentric[i] = 0;
    for (let i = 0; i <= d; i++) {
      const v = (elevated[i] - rem0[i]) / d1;
      barycentric[d - rank[i]] += v;
      barycentric[d - rank[i] + 1] -= v;
    }
    barycentric[0] += 1 + barycentric[d + 1];
    for (let r = 0; r <= d; r++) {
      for (let i = 0; i < d; i++) key[i] = rem0[i] + canonical[r * d1 + rank[i]];
      offsets[p * d1 + r] = table.insert(key) + 1;
      weights[p * d1 + r] = barycentric[r];
    }
  }
}

/** [d+1, M, 2]: index + 1 of each vertex's two neighbours along each lattice axis (0: absent). */
function findNeighbours(table: VertexTable, d: number): Int32Array {
  const vertices = table.size;
  const keys = table.keys;
  const neighbours = new Int32Array((d + 1) * vertices * 2);
  const n1 = new Int32Array(d);
  const n2 = new Int32Array(d);
  for (let axis = 0; axis <= d; axis++) {
    for (let v = 0; v < vertices; v++) {
      const base = v * d;
      for (let i = 0; i < d; i++) {
        n1[i] = keys[base + i] - 1;
        n2[i] = keys[base + i] + 1;
      }
      // Axis d moves every stored coordinate by -1/+1 (its own coordinate is implicit).
      if (axis < d) {
        n1[axis] = keys[base + axis] + d;
        n2[axis] = keys[base + axis] - d;
      }
      const at = (axis * vertices + v) * 2;
      neighbours[at] = table.find(n1) + 1;
      neighbours[at + 1] = table.find(n2) + 1;
    }
  }
  return neighbours;
}

/** Open-addressing hash table from integer keys of length `dim` to dense vertex indices. */
class VertexTable {
  /** [capacity / 2, dim]: the key of each vertex, in insertion order. */
  keys: Int32Array;
  size = 0;
  /** Vertex index + 1 per slot, 0 = empty; at most half full. */
  private slots: Int32Array;
  private readonly dim: number;

  constructor(dim: number, expected: number) {
    this.dim = dim;
    let capacity = 1024;
    while (capacity < 2 * expected) capacity *= 2;
    this.slots = new Int32Array(capacity);
    this.keys = new Int32Array((capacity >> 1) * dim);
  }

  /** Index of `key`, or -1. */
  find(key: Int32Array): number {
    const { slots, keys, dim } = this;
    const mask = slots.length - 1;
    for (let slot = hashKey(key, 0, dim, mask); ; slot = (slot + 1) & mask) {
      const entry = slots[slot];
      if (entry === 0) return -1;
      if (sameKey(keys, (entry - 1) * dim, key, dim)) return entry - 1;
    }
  }

  /** Index of `key`, adding it when new. */
  insert(key: Int32Array): number {
    if ((this.size + 1) * 2 > this.slots.length) this.grow();
    const { slots, keys, dim } = this;
    const mask = slots.length - 1;
    for (let slot = hashKey(key, 0, dim, mask); ; slot = (slot + 1) & mask) {
      const entry = slots[slot];
      if (entry === 0) {
        const base = this.size * dim;
        for (let i = 0; i < dim; i++) keys[base + i] = key[i];
        slots[slot] = ++this.size;
        return this.size - 1;
      }
      if (sameKey(keys, (entry - 1) * dim, key, dim)) return entry - 1;
    }
  }

  private grow(): void {
    const capacity = this.slots.length * 2;
    const mask = capacity - 1;
    const slots = new Int32Array(capacity);
    const keys = new Int32Array((capacity >> 1) * this.dim);
    keys.set(this.keys.subarray(0, this.size * this.dim));
    for (let v = 0; v < this.size; v++) {
      let slot = hashKey(keys, v * this.dim, this.dim, mask);
      while (slots[slot] !== 0) slot = (slot + 1) & mask;
      slots[slot] = v + 1;
    }
    this.slots = slots;
    this.keys = keys;
  }
}

/** Slot of the key at `keys[at..at+dim)` (Krähenbühl's multiplicative hash, high bits folded in). */
function hashKey(keys: Int32Array, at: number, dim: number, mask: number): number {
  let h = 0;
  for (let i = 0; i < dim; i++) h = Math.imul(h + keys[at + i], 2531011);
  return (h ^ (h >>> 15)) & mask;
}

function sameKey(keys: Int32Array, at: number, key: Int32Array, dim: number): boolean {
  for (let i = 0; i < dim; i++) if (keys[at + i] !== key[i]) return false;
  return true;
}

/** Stands for "no scale" (an empty array keeps the inner loops monomorphic). */
const ONE = new Float32Array(0);

// The three inner loops of `filterInto` as plain functions of typed arrays (V8 optimises these best).

/** Adds each point's GROUP-lane value, weighted, into its simplex's d+1 vertices. */
function splatGroup(values: Float32Array, input: Float32Array, first: number, lanes: number, points: number, d1: number, offsets: Int32Array, weights: Float32Array, scale: Float32Array): void {
  const scaled = scale.length > 0;
  for (let p = 0, at = 0; p < points; p++, at += d1) {
    const s = scaled ? scale[p] : 1;
    const x0 = input[first + p] * s;
    const x1 = lanes > 1 ? input[first + points + p] * s : 0;
    const x2 = lanes > 2 ? input[first + 2 * points + p] * s : 0;
    const x3 = lanes > 3 ? input[first + 3 * points + p] * s : 0;
    for (let r = 0; r < d1; r++) {
      const o = offsets[at + r] * GROUP;
      const w = weights[at + r];
      values[o] += w * x0;
      values[o + 1] += w * x1;
      values[o + 2] += w * x2;
      values[o + 3] += w * x3;
    }
  }
}

/** One [1 2 1] / 2 blur step along a lattice axis: `next = values + (left + right) / 2`. */
function blurAxis(next: Float32Array, values: Float32Array, neighbours: Int32Array, firstPair: number, vertices: number): void {
  for (let v = 0, pair = firstPair; v < vertices; v++, pair += 2) {
    const self = (v + 1) * GROUP;
    const a = neighbours[pair] * GROUP;
    const b = neighbours[pair + 1] * GROUP;
    next[self] = values[self] + 0.5 * (values[a] + values[b]);
    next[self + 1] = values[self + 1] + 0.5 * (values[a + 1] + values[b + 1]);
    next[self + 2] = values[self + 2] + 0.5 * (values[a + 2] + values[b + 2]);
    next[self + 3] = values[self + 3] + 0.5 * (values[a + 3] + values[b + 3]);
  }
}

/** Reads each point's GROUP lanes back as the weighted sum of its simplex's vertices. */
function sliceGroup(out: Float32Array, values: Float32Array, first: number, lanes: number, points: number, d1: number, offsets: Int32Array, weights: Float32Array, scale: Float32Array, alpha: number): void {
  const scaled = scale.length > 0;
  for (let p = 0, at = 0; p < points; p++, at += d1) {
    let s0 = 0;
    let s1 = 0;
    let s2 = 0;
    let s3 = 0;
    for (let r = 0; r < d1; r++) {
      const o = offsets[at + r] * GROUP;
      const w = weights[at + r];
      s0 += w * values[o];
      s1 += w * values[o + 1];
      s2 += w * values[o + 2];
      s3 += w * values[o + 3];
    }
    const s = (scaled ? scale[p] : 1) * alpha;
    out[first + p] = s0 * s;
    if (lanes > 1) out[first + points + p] = s1 * s;
    if (lanes > 2) out[first + 2 * points + p] = s2 * s;
    if (lanes > 3) out[first + 3 * points + p] = s3 * s;
  }
}
