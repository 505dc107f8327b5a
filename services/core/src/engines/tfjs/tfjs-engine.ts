// The `tfjs` training engine: the loss of engine.ts written with TensorFlow.js ops and differentiated
// by tfjs autodiff (tf.valueAndGrads). The readable reference engine (DESIGN 7).

import * as tf from '@tensorflow/tfjs';
import { FussError, ShapeError } from '../../errors.js';
import {
  HEAD_PARAM_NAMES,
  NONLINEAR_PARAM_NAMES,
  type HeadParamName,
  type HeadParams,
  type HeadShape,
  type RegularizerScope,
  type StepBatch,
  type StepConfig,
  type StepResult,
  type TrainingEngine,
} from '../engine.js';
import { UNIT_NORM_EPSILON } from '../engine-constants.js';
import { matMul2d, matMulConstantLeft } from './matmul-2d.js';
import { selectTfjsBackend } from './tfjs-backend.js';

/** Options of {@link createTfjsEngine}. */
export interface TfjsEngineOptions {
  /** Receives one line per backend tried (which was skipped and why). */
  log?: (line: string) => void;
}

/**
 * Creates the `tfjs` engine on the fastest installed TensorFlow.js backend: tfjs-node-gpu, then
 * tfjs-node, else wasm (see `selectTfjsBackend`). `description` names the backend.
 *
 * The engine holds no tensors between calls; `dispose()` only marks it closed (the tfjs backend is
 * process-wide and stays registered).
 */
export async function createTfjsEngine(options: TfjsEngineOptions = {}): Promise<TrainingEngine> {
  const choice = await selectTfjsBackend(options.log ?? (() => {}));
  let disposed = false;
  const ensureOpen = () => {
    if (disposed) throw new FussError('the tfjs engine was used after dispose()', { status: 500, type: 'engine-disposed' });
  };
  return {
    name: 'tfjs',
    description: choice.description,
    device: choice.device,
    async step(head, centroids, shape, batch, config) {
      ensureOpen();
      checkStepInputs(head, centroids, shape, batch, config);
      return runStep(head, centroids, shape, batch, config);
    },
    async codes(head, shape, features, cells) {
      ensureOpen();
      checkHead(head, shape, 'head');
      expectLength(features, cells * shape.channels, 'features');
      const s = tf.tidy(() => {
        const x = tf.tensor2d(features, [cells, shape.channels]);
        return headForward(forwardHead(headTensors(head, shape)), x, x).s;
      });
      const out = (await s.data()) as Float32Array;
      s.dispose();
      return out;
    },
    async dispose() {
      disposed = true;
    },
  };
}

/** The head weights as tensors in their stored layout (W [out, in]). */
type HeadTensorMap = Record<HeadParamName, tf.Tensor>;

/** The head ready for the forward: weights transposed to [in, out] so every product is a plain matMul. */
interface ForwardHead {
  w1T: tf.Tensor2D;
  b1: tf.Tensor1D;
  w2T: tf.Tensor2D;
  b2: tf.Tensor1D;
  w3T: tf.Tensor2D;
  b3: tf.Tensor1D;
}

function headTensors(head: HeadParams, shape: HeadShape): HeadTensorMap {
  const { channels: C, codeDim: D } = shape;
  return {
    l1Weight: tf.tensor2d(head.l1Weight, [D, C]),
    l1Bias: tf.tensor1d(head.l1Bias),
    l2Weight: tf.tensor2d(head.l2Weight, [C, C]),
    l2Bias: tf.tensor1d(head.l2Bias),
    l3Weight: tf.tensor2d(head.l3Weight, [D, C]),
    l3Bias: tf.tensor1d(head.l3Bias),
  };
}

/** The head with transposed weights; inside the differentiated function a transpose passes its gradient back transposed. */
function forwardHead(p: HeadTensorMap): ForwardHead {
  return {
    w1T: tf.transpose(p.l1Weight as tf.Tensor2D),
    b1: p.l1Bias as tf.Tensor1D,
    w2T: tf.transpose(p.l2Weight as tf.Tensor2D),
    b2: p.l2Bias as tf.Tensor1D,
    w3T: tf.transpose(p.l3Weight as tf.Tensor2D),
    b3: p.l3Bias as tf.Tensor1D,
  };
}

/**
 * Head forward on constant [rows, C] inputs (features get no gradient): `x1` feeds the linear branch,
 * `x2` the nonlinear one (pass the same tensor twice for no dropout).
 * Returns Z = relu(x2 W2^T + b2) W3^T + b3 and S = x1 W1^T + b1 + Z, [rows, D].
 */
function headForward(h: ForwardHead, x1: tf.Tensor2D, x2: tf.Tensor2D): { z: tf.Tensor2D; s: tf.Tensor2D } {
  const hidden = tf.relu(tf.add(matMulConstantLeft(x2, h.w2T), h.b2)) as tf.Tensor2D;
  const z = tf.add(matMul2d(hidden, h.w3T), h.b3) as tf.Tensor2D;
  const s = tf.add(tf.add(matMulConstantLeft(x1, h.w1T), h.b1), z) as tf.Tensor2D;
  return { z, s };
}

/** Rows scaled to unit length: x / max(|x|, UNIT_NORM_EPSILON). */
function unitRows(x: tf.Tensor2D): tf.Tensor2D {
  const norm = tf.sqrt(tf.sum(tf.mul(x, x), -1, true));
  return tf.div(x, tf.maximum(norm, UNIT_NORM_EPSILON));
}

/** Row-wise dot products of two [rows, D] tensors -> [rows]. */
function rowDots(a: tf.Tensor2D, b: tf.Tensor2D): tf.Tensor1D {
  return tf.sum(tf.mul(a, b), 1);
}

/**
 * `Fc - shift_p` for every pair (Eq. 6), constants of the step: F = Fa Fb^T on the unit features
 * (one [N, C] tensor per image), Fc = F - rowmean(F) + mean(F). One [N, N] tensor per pair.
 */
function shiftedFeatureCorrelations(featuresUnit: tf.Tensor2D[], batch: StepBatch): tf.Tensor2D[] {
  const transposed = lazyTransposes(featuresUnit);
  return Array.from(batch.pairShift, (shift, p) => {
    const fbT = transposed(batch.pairB[p]);
    return tf.tidy(() => {
      const f = tf.matMul(featuresUnit[batch.pairA[p]], fbT);
      const fc = tf.add(tf.sub(f, tf.mean(f, 1, true)), tf.mean(f));
      return tf.sub(fc, shift) as tf.Tensor2D;
    });
  });
}

/** `i -> transpose(items[i])`, computed on first use and reused (images appear in several pairs). */
function lazyTransposes(items: tf.Tensor2D[]): (i: number) => tf.Tensor2D {
  const cache = new Map<number, tf.Tensor2D>();
  return (i) => {
    let t = cache.get(i);
    if (!t) {
      t = tf.transpose(items[i]);
      cache.set(i, t);
    }
    return t;
  };
}

/** MOON's representation z: the branch output Z (scope `nonlinear`) or the code S (scope `head`). */
function pickScope(out: { z: tf.Tensor2D; s: tf.Tensor2D }, scope: RegularizerScope): tf.Tensor2D {
  return scope === 'nonlinear' ? out.z : out.s;
}

/**
 * MOON targets, constants: unit rows of z from the global and the previous head (no dropout), one
 * [N, D] tensor per query image.
 */
function moonTargets(moon: NonNullable<StepConfig['moon']>, shape: HeadShape, queryFeatures: tf.Tensor2D[]) {
  const targets = (head: HeadParams) => {
    const h = forwardHead(headTensors(head, shape));
    return queryFeatures.map((x) => unitRows(pickScope(headForward(h, x, x), moon.scope)));
  };
  return { global: targets(moon.globalHead), previous: targets(moon.previousHead) };
}

/**
 * The rows of the first `count` images of a [I*N, D] tensor, as tensors [N, D]: image i is e_i^T X
 * with X viewed as [I, N*D]. A plain product with a plain-product gradient; tf.slice / tf.unstack
 * would copy the whole input once per image on wasm (2.8 s to unstack [16, 784, 768]).
 */
function splitImages(x: tf.Tensor2D, images: number, count = images): tf.Tensor2D[] {
  const [rows, cols] = x.shape;
  const cells = rows / images;
  const wide = tf.reshape(x, [images, cells * cols]) as tf.Tensor2D;
  return Array.from({ length: count }, (_, i) => {
    const selector = new Float32Array(images);
    selector[i] = 1;
    return tf.reshape(matMulConstantLeft(tf.tensor2d(selector, [1, images]), wide), [cells, cols]) as tf.Tensor2D;
  });
}

/** Everything a step returns, as tensors until read. */
interface StepTensors {
  loss: tf.Scalar;
  grads: tf.Tensor[];
  parts: tf.Scalar[];
  clusterCounts: tf.Tensor1D;
}

async function runStep(head: HeadParams, centroids: Float32Array, shape: HeadShape, batch: StepBatch, config: StepConfig): Promise<StepResult> {
  const { channels: C, codeDim: D } = shape;
  const { images: I, cells: N, queries: Q } = batch;
  const K = config.k;
  const queryRows = Q * N;
  const images = Array.from({ length: I }, (_, i) => i);

  const out: StepTensors = tf.tidy(() => {
    // Constants of the step (no gradient flows into them). Per-image tensors are cut from the typed
    // arrays: the wasm backend's Slice copies its whole input on every call.
    const imageTensor = (values: Float32Array, i: number) => tf.tensor2d(values.subarray(i * N * C, (i + 1) * N * C), [N, C]);
    const x = tf.tensor3d(batch.features, [I, N, C]);
    const masked = (mask: Float32Array) => tf.reshape(tf.mul(x, tf.tensor3d(mask, [I, 1, C])), [I * N, C]) as tf.Tensor2D;
    const [x1, x2] = [masked(batch.dropMask1), masked(batch.dropMask2)]; // [I*N, C]
    const fcShifted = shiftedFeatureCorrelations(
      images.map((i) => imageTensor(batch.featuresUnit, i)),
      batch,
    );
    const moon = config.moon ? moonTargets(config.moon, shape, images.slice(0, Q).map((i) => imageTensor(batch.features, i))) : undefined;
    const proxGlobal = config.prox ? headTensors(config.prox.globalHead, shape) : undefined;

    const parts: tf.Scalar[] = [];
    let clusterCounts: tf.Tensor1D | undefined;

    // The total loss L = L_corr + L_clu + L_moon + L_prox as a function of the seven parameters.
    const totalLoss = (...args: tf.Tensor[]): tf.Scalar => {
      const params = Object.fromEntries(HEAD_PARAM_NAMES.map((name, i) => [name, args[i]])) as HeadTensorMap;
      const m = args[HEAD_PARAM_NAMES.length] as tf.Tensor2D;
      // The head runs on the flat [I*N, C] matrix: one large product per layer.
      const codes = headForward(forwardHead(params), x1, x2); // Z and S, [I*N, D]

      // Correspondence loss (Eq. 6): per pair -mean(max(C, 0) * (Fc - shift)), weighted and summed.
      const u = splitImages(codes.s, I).map(unitRows); // [N, D] per image
      const uTransposed = lazyTransposes(u);
      const pairLosses = fcShifted.map((fc, p) => {
        const cos = matMul2d(u[batch.pairA[p]], uTransposed(batch.pairB[p]));
        const pairLoss = tf.neg(tf.mean(tf.mul(tf.relu(cos), fc)));
        return tf.mul(pairLoss, batch.pairWeight[p]) as tf.Scalar;
      });
      const corr = pairLosses.length > 0 ? (tf.addN(pairLosses) as tf.Scalar) : tf.scalar(0);

      // Centroid loss (Eq. 5) on detached unit codes of the query cells. tfjs has no stopGradient:
      // a tensor built from the values is a constant to the tape.
      // The query images come first, so their cells are the first Q*N rows.
      const sQuery = codes.s.dataSync().subarray(0, queryRows * D);
      const uQuery = unitRows(tf.tensor2d(sQuery, [queryRows, D]));
      const mh = unitRows(m);
      const inner = matMulConstantLeft(uQuery, tf.transpose(mh)); // [Q*N, K]
      // Hard assignment k(n): argMax and oneHot pass no gradient (tfjs defines theirs as zero).
      // tf.oneHot needs depth >= 2; with one centroid every cell chooses it.
      const assignment = K === 1 ? tf.ones([queryRows, 1], 'int32') : tf.oneHot(tf.argMax(inner, 1), K);
      clusterCounts = tf.keep(tf.sum(assignment, 0) as tf.Tensor1D);
      const attraction = tf.neg(tf.mean(tf.sum(tf.mul(inner, tf.cast(assignment, 'float32')), 1)));
      let cluster = attraction as tf.Scalar;
      if (K > 1 && config.lambda !== 0) {
        const gram = matMul2d(mh, tf.transpose(mh)); // <Mh_k, Mh_l>
        const offDiagonal = tf.sub(1, tf.eye(K));
        const repulsion = tf.div(tf.sum(tf.mul(gram, offDiagonal)), K * (K - 1));
        cluster = tf.add(cluster, tf.mul(repulsion, config.lambda)) as tf.Scalar;
      }

      // MOON: weight * mean_n softplus((cos(z, zp) - cos(z, zg)) / tau) over the query cells.
      let moonLoss = tf.scalar(0);
      if (config.moon && moon) {
        const { scope, tau, weight } = config.moon;
        const softplusSums = splitImages(pickScope(codes, scope), I, Q).map((zImage, i) => {
          const z = unitRows(zImage);
          const logit = tf.div(tf.sub(rowDots(z, moon.previous[i]), rowDots(z, moon.global[i])), tau);
          return tf.sum(tf.softplus(logit));
        });
        moonLoss = tf.mul(tf.addN(softplusSums), weight / queryRows) as tf.Scalar;
      }

      // FedProx: mu / 2 * sum over the scoped parameters of |theta - theta_global|^2.
      let prox = tf.scalar(0);
      if (config.prox && proxGlobal) {
        const names = config.prox.scope === 'nonlinear' ? NONLINEAR_PARAM_NAMES : HEAD_PARAM_NAMES;
        const squares = names.map((name) => tf.sum(tf.square(tf.sub(params[name], proxGlobal[name]))));
        prox = tf.mul(tf.addN(squares), config.prox.mu / 2) as tf.Scalar;
      }

      for (const part of [corr, cluster, moonLoss, prox]) parts.push(tf.keep(part));
      return tf.addN([corr, cluster, moonLoss, prox]) as tf.Scalar;
    };

    const headInputs = headTensors(head, shape);
    const inputs = [...HEAD_PARAM_NAMES.map((name) => headInputs[name]), tf.tensor2d(centroids, [K, D])];
    const { value, grads } = tf.valueAndGrads(totalLoss)(inputs);
    // A parameter the loss does not reach (no pairs, say) gets no gradient from tfjs: zero.
    const allGrads = inputs.map((input, i) => grads[i] ?? tf.zerosLike(input));
    return { loss: value, grads: allGrads, parts, clusterCounts: clusterCounts as tf.Tensor1D };
  });

  try {
    const [loss, corr, cluster, moon, prox] = await Promise.all([out.loss, ...out.parts].map(async (t) => (await t.data())[0]));
    const grads = (await Promise.all(out.grads.map((g) => g.data()))) as Float32Array[];
    const headGrad = Object.fromEntries(HEAD_PARAM_NAMES.map((name, i) => [name, grads[i]])) as unknown as HeadParams;
    return {
      loss,
      parts: { corr, cluster, moon, prox },
      headGrad,
      centroidGrad: grads[HEAD_PARAM_NAMES.length],
      clusterCounts: Int32Array.from(await out.clusterCounts.data()),
    };
  } finally {
    tf.dispose([out.loss, ...out.grads, ...out.parts, out.clusterCounts]);
  }
}

function expectLength(values: ArrayLike<number>, length: number, what: string): void {
  if (values.length !== length) throw new ShapeError(`${what}: length ${values.length}, expected ${length}`);
}

function checkHead(head: HeadParams, shape: HeadShape, what: string): void {
  const { channels: C, codeDim: D } = shape;
  const expected: Record<HeadParamName, number> = { l1Weight: D * C, l1Bias: D, l2Weight: C * C, l2Bias: C, l3Weight: D * C, l3Bias: D };
  for (const name of HEAD_PARAM_NAMES) expectLength(head[name], expected[name], `${what}.${name}`);
}

/** Shapes of everything `step` reads, so a wrong size fails here rather than deep inside tfjs. */
function checkStepInputs(head: HeadParams, centroids: Float32Array, shape: HeadShape, batch: StepBatch, config: StepConfig): void {
  const { channels: C, codeDim: D } = shape;
  const { images: I, cells: N, queries: Q } = batch;
  checkHead(head, shape, 'head');
  if (config.moon) {
    checkHead(config.moon.globalHead, shape, 'moon.globalHead');
    checkHead(config.moon.previousHead, shape, 'moon.previousHead');
  }
  if (config.prox) checkHead(config.prox.globalHead, shape, 'prox.globalHead');
  if (!(config.k >= 1)) throw new ShapeError(`k must be at least 1, got ${config.k}`);
  expectLength(centroids, config.k * D, 'centroids');
  if (batch.channels !== C) throw new ShapeError(`batch has ${batch.channels} channels, the head ${C}`);
  if (!(Q >= 1 && Q <= I)) throw new ShapeError(`queries must be in 1..${I}, got ${Q}`);
  expectLength(batch.features, I * N * C, 'features');
  expectLength(batch.featuresUnit, I * N * C, 'featuresUnit');
  expectLength(batch.dropMask1, I * C, 'dropMask1');
  expectLength(batch.dropMask2, I * C, 'dropMask2');
  const P = batch.pairA.length;
  expectLength(batch.pairB, P, 'pairB');
  expectLength(batch.pairWeight, P, 'pairWeight');
  expectLength(batch.pairShift, P, 'pairShift');
  for (let p = 0; p < P; p++) {
    if (!(batch.pairA[p] >= 0 && batch.pairA[p] < I && batch.pairB[p] >= 0 && batch.pairB[p] < I)) {
      throw new ShapeError(`pair ${p} (${batch.pairA[p]}, ${batch.pairB[p]}) names an image outside 0..${I - 1}`);
    }
  }
}
