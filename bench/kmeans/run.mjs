// k-means speed: Lloyd iterations on 100 000 x 768 float32 points (CamVid feature cells sampled as
// `fuss evaluate --kmeans` samples them, or synthetic blobs without ../shared), K = 11, from one
// k-means++ start, by FUSS (onnxruntime kernel; optionally the exact TypeScript kernel) and by
// scikit-learn's Lloyd on the same points and start, in the same run, runs interleaved.
// Usage: node bench/kmeans/run.mjs [--points 100000] [--k 11] [--iterations 20] [--runs 3]
//   [--source camvid|synthetic] [--threads 2] [--ts-iterations 2] [--python python3]

import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Backbone, createRng, kmeans, kmeansOnnx, kmeansPlusPlusInit, openDataset, sampleFeatureCells } from '@fuss/core';
import { hasSharedAssets, median, printTable, sharedAssets, writeResults } from '../common.mjs';

const { values } = parseArgs({
  options: {
    points: { type: 'string', default: '100000' },
    k: { type: 'string', default: '11' },
    iterations: { type: 'string', default: '20' },
    runs: { type: 'string', default: '3' },
    source: { type: 'string' },
    threads: { type: 'string', default: '2' },
    'ts-iterations': { type: 'string', default: '2' },
    seed: { type: 'string', default: '0' },
    python: { type: 'string' },
  },
});
const n = Number(values.points);
const k = Number(values.k);
const iterations = Number(values.iterations);
const runs = Number(values.runs);
const threads = Number(values.threads);
const tsIterations = Number(values['ts-iterations']);
const seed = Number(values.seed);

const { points, dim, source } = await loadPoints();
console.error(`points: ${n} x ${dim} float32 (${source}), K = ${k}, ${iterations} Lloyd iterations, ${runs} runs`);
const init = kmeansPlusPlusInit(points, dim, k, createRng(seed));
const python = findSklearnPython();
const tmp = mkdtempSync(join(tmpdir(), 'fuss-bench-kmeans-'));
const pointsFile = join(tmp, 'points.f32');
const initFile = join(tmp, 'init.f32');
if (python) {
  writeFileSync(pointsFile, points);
  writeFileSync(initFile, init);
} else {
  console.error('scikit-learn not found (tried python3 and /usr/bin/python3; Debian: apt-get install python3-sklearn): no anchor row');
}

// Warm-up, untimed: loads onnxruntime's library and JIT-compiles the TypeScript side.
await kmeansOnnx(points.subarray(0, Math.min(n, 2000) * dim), dim, { k, rng: createRng(seed), maxIterations: 2, threads });

const fuss = { wall: [], setup: [], iterations: 0, inertia: 0 };
const sklearn = { wall: [], iterations: 0, inertia: 0, threadpools: undefined };
try {
  for (let run = 0; run < runs; run++) {
    // Setup alone (norms, session, first assignment), then the full run: their difference is the
    // marginal cost of the Lloyd iterations.
    let started = performance.now();
    await kmeansOnnx(points, dim, { k, rng: createRng(seed), init, maxIterations: 0, threads });
    fuss.setup.push(performance.now() - started);
    started = performance.now();
    const result = await kmeansOnnx(points, dim, { k, rng: createRng(seed), init, maxIterations: iterations, tolerance: 0, threads });
    fuss.wall.push(performance.now() - started);
    fuss.iterations = result.iterations;
    fuss.inertia = result.inertia;
    if (python) {
      const measured = runSklearn(python);
      sklearn.wall.push(measured.seconds * 1000);
      sklearn.iterations = measured.iterations;
      sklearn.inertia = measured.inertia;
      sklearn.threadpools = measured.threadpools;
    }
    console.error(`run ${run + 1}/${runs}: fuss ${fuss.wall.at(-1).toFixed(0)} ms${python ? `, scikit-learn ${sklearn.wall.at(-1).toFixed(0)} ms` : ''}`);
  }
} finally {
  rmSync(tmp, { recursive: true, force: true });
}

const perIteration = (wall, its) => median(wall) / its;
const fussPerIteration = perIteration(fuss.wall, fuss.iterations);
const fussMarginal = (median(fuss.wall) - median(fuss.setup)) / fuss.iterations;
const rows = [
  {
    implementation: `fuss kmeansOnnx (onnxruntime Gemm, ${threads} threads)`,
    'ms/iteration': fussPerIteration.toFixed(1),
    'marginal ms/iteration': fussMarginal.toFixed(1),
    iterations: fuss.iterations,
    inertia: fuss.inertia.toFixed(3),
    'speed-up vs scikit-learn': python ? `${(perIteration(sklearn.wall, sklearn.iterations) / fussPerIteration).toFixed(1)}x` : '-',
  },
];
let typescript;
if (tsIterations > 0) {
  // The synchronous exact kernel (FedCC's): one run, few iterations, it is slow at this size.
  let started = performance.now();
  kmeans(points, dim, { k, rng: createRng(seed), init, maxIterations: 0 });
  const setup = performance.now() - started;
  started = performance.now();
  const result = kmeans(points, dim, { k, rng: createRng(seed), init, maxIterations: tsIterations, tolerance: 0 });
  const wall = performance.now() - started;
  typescript = { wall, setup, iterations: result.iterations, inertia: result.inertia };
  rows.push({
    implementation: 'fuss kmeans (TypeScript float64 kernel, 1 thread)',
    'ms/iteration': (wall / result.iterations).toFixed(1),
    'marginal ms/iteration': ((wall - setup) / result.iterations).toFixed(1),
    iterations: result.iterations,
    inertia: result.inertia.toFixed(3),
    'speed-up vs scikit-learn': python ? `${(perIteration(sklearn.wall, sklearn.iterations) / (wall / result.iterations)).toFixed(2)}x` : '-',
  });
}
if (python) {
  const blas = sklearn.threadpools.find((p) => p.user_api === 'blas');
  rows.push({
    implementation: `scikit-learn KMeans lloyd (${blas ? `${blas.internal_api} ${blas.version} ${blas.architecture}, ${blas.num_threads} threads` : 'BLAS unknown'})`,
    'ms/iteration': perIteration(sklearn.wall, sklearn.iterations).toFixed(1),
    'marginal ms/iteration': '-',
    iterations: sklearn.iterations,
    inertia: sklearn.inertia.toFixed(3),
    'speed-up vs scikit-learn': '1.0x',
  });
}
printTable(rows);
console.log('ms/iteration: median wall time of a run divided by its iterations (setup included); marginal: minus the median setup-only run.');
if (python && sklearn.iterations === fuss.iterations) {
  console.log(`inertia after ${fuss.iterations} iterations: fuss / scikit-learn = ${(fuss.inertia / sklearn.inertia).toFixed(8)}`);
}
console.log(
  `written ${writeResults('kmeans', {
    points: { source, n, dim, k },
    iterations,
    runs,
    threads,
    fuss,
    typescript,
    sklearn: python ? { python, ...sklearn } : undefined,
    rows,
  })}`,
);

async function loadPoints() {
  const wanted = values.source ?? (hasSharedAssets() ? 'camvid' : 'synthetic');
  if (wanted === 'synthetic' && !values.source) console.error('../shared not found: synthetic points (the kernel timing is comparable, the data is not CamVid)');
  if (wanted === 'camvid') {
    const assets = sharedAssets();
    const backbone = await Backbone.open(assets.mobilenet, { threads });
    try {
      // The cells `fuss evaluate --kmeans` fits on (same sampling, same seed), from the CLI's default cache.
      const cells = await sampleFeatureCells(await openDataset(assets.train), backbone, createRng(seed), { maxSamples: n, cacheDir: '.fuss/cache' });
      if (cells.samples < n) console.error(`camvid train gave ${cells.samples} cells, fewer than ${n}`);
      return { points: cells.points.slice(0, Math.min(n, cells.samples) * cells.channels), dim: cells.channels, source: `camvid train, ${backbone.descriptor.id} ${backbone.descriptor.outputs.join('+')}` };
    } finally {
      await backbone.close();
    }
  }
  // Synthetic: k unit-norm blob centres in 768 dimensions, points around them, unit-normalised.
  const dim = 768;
  const rng = createRng(seed);
  const centres = Float32Array.from({ length: k * dim }, () => rng.normal());
  const points = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) {
    const c = rng.int(k);
    let norm = 0;
    for (let j = 0; j < dim; j++) {
      const v = centres[c * dim + j] + 1.5 * rng.normal();
      points[i * dim + j] = v;
      norm += v * v;
    }
    const scale = 1 / Math.sqrt(norm);
    for (let j = 0; j < dim; j++) points[i * dim + j] *= scale;
  }
  return { points, dim, source: 'synthetic blobs' };
}

function findSklearnPython() {
  for (const candidate of values.python ? [values.python] : ['python3', '/usr/bin/python3']) {
    const probe = spawnSync(candidate, ['-c', 'import sklearn, numpy'], { stdio: 'ignore' });
    if (probe.status === 0) return candidate;
  }
  return undefined;
}

function runSklearn(python) {
  const script = `
import json, sys, time
import numpy as np
from sklearn.cluster import KMeans
try:
    from threadpoolctl import threadpool_info
except ImportError:
    threadpool_info = lambda: []
n, dim, k, iterations = ${n}, ${dim}, ${k}, ${iterations}
X = np.fromfile(${JSON.stringify(pointsFile)}, dtype=np.float32).reshape(n, dim)
init = np.fromfile(${JSON.stringify(initFile)}, dtype=np.float32).reshape(k, dim)
model = KMeans(n_clusters=k, init=init, n_init=1, max_iter=iterations, algorithm='lloyd', tol=0)
started = time.perf_counter()
model.fit(X)
seconds = time.perf_counter() - started
print(json.dumps({'seconds': seconds, 'iterations': int(model.n_iter_), 'inertia': float(model.inertia_), 'threadpools': threadpool_info()}))
`;
  // OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE may be set for other tools on this machine; the anchor gets
  // OpenBLAS's own choice of kernel (reported from threadpoolctl).
  const env = { ...process.env };
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  const result = spawnSync(python, ['-c', script], { env, encoding: 'utf8', maxBuffer: 1 << 20 });
  if (result.status !== 0) throw new Error(`scikit-learn run failed: ${result.stderr}`);
  return JSON.parse(result.stdout.trim().split('\n').at(-1));
}
