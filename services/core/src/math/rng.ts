// Seeded pseudo-random numbers. Every random choice in FUSS goes through an Rng so that a seed
// reproduces a run exactly; Math.random is banned in the pure folders.

/** A seeded random source. */
export interface Rng {
  /** Uniform float in [0, 1). */
  next(): number;
  /** Uniform integer in [0, n). */
  int(n: number): number;
  /** Standard normal variate (Box-Muller). */
  normal(): number;
  /** Gamma(shape, 1) variate (Marsaglia-Tsang), shape > 0. */
  gamma(shape: number): number;
  /** A new independent generator derived from this one (for per-client or per-restart streams). */
  fork(): Rng;
}

/** Mixes a 32-bit integer (splitmix32 finaliser); used to spread seeds. */
function mix32(x: number): number {
  x = (x + 0x9e3779b9) | 0;
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

/**
 * xoshiro128** generator seeded through splitmix32. Period 2^128 - 1; statistically sound for
 * sampling and initialisation (not for cryptography).
 */
export function createRng(seed: number): Rng {
  let s0 = mix32(seed | 0);
  let s1 = mix32(s0 ^ 0x1b873593);
  let s2 = mix32(s1 ^ 0xcc9e2d51);
  let s3 = mix32(s2 ^ 0xe6546b64);
  if ((s0 | s1 | s2 | s3) === 0) s0 = 1;

  const nextU32 = (): number => {
    const result = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
    const t = s1 << 9;
    s2 ^= s0;
    s3 ^= s1;
    s1 ^= s2;
    s0 ^= s3;
    s2 ^= t;
    s3 = rotl(s3, 11);
    return result;
  };

  let spareNormal: number | undefined;
  const rng: Rng = {
    next: () => nextU32() / 4294967296,
    int: (n: number) => Math.floor((nextU32() / 4294967296) * n),
    normal: () => {
      if (spareNormal !== undefined) {
        const v = spareNormal;
        spareNormal = undefined;
        return v;
      }
      let u = 0;
      while (u === 0) u = rng.next();
      const v = rng.next();
      const r = Math.sqrt(-2 * Math.log(u));
      spareNormal = r * Math.sin(2 * Math.PI * v);
      return r * Math.cos(2 * Math.PI * v);
    },
    gamma: (shape: number) => sampleGamma(rng, shape),
    fork: () => createRng(nextU32() ^ mix32(nextU32())),
  };
  return rng;
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** Marsaglia and Tsang (2000); for shape < 1 uses the boost Gamma(a) = Gamma(a+1) * U^(1/a). */
function sampleGamma(rng: Rng, shape: number): number {
  if (!(shape > 0)) throw new RangeError(`gamma shape must be > 0, got ${shape}`);
  if (shape < 1) {
    let u = 0;
    while (u === 0) u = rng.next();
    return sampleGamma(rng, shape + 1) * Math.pow(u, 1 / shape);
  }
  const d = shape - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    let x: number;
    let v: number;
    do {
      x = rng.normal();
      v = 1 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const u = rng.next();
    if (u < 1 - 0.0331 * x * x * x * x) return d * v;
    if (Math.log(u) < 0.5 * x * x + d * (1 - v + Math.log(v))) return d * v;
  }
}

/** Fisher-Yates shuffle of a copy of `items`. */
export function shuffled<T>(items: readonly T[], rng: Rng): T[] {
  const out = items.slice();
  for (let i = out.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const tmp = out[i];
    out[i] = out[j];
    out[j] = tmp;
  }
  return out;
}
