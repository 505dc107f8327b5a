// The training step as one ONNX graph: forward of the head and the losses (engine.ts) followed by the
// hand-derived backward pass, so onnxruntime runs the whole step with its fast matrix kernels.
// Gradient formulas are written next to each block; the finite-difference and parity tests check them.
// Only operators that onnxruntime's WebGPU provider implements are used (webgpu-operators.ts lists them
// and a test holds every graph here to that list), so no node of the step falls back to the CPU there.

import { GraphBuilder } from '../../onnx/graph-builder.js';
import { OnnxDataType } from '../../onnx/model-builder.js';
import { UNIT_NORM_EPSILON } from '../engine-constants.js';
import type { RegularizerScope } from '../engine.js';

export interface StepGraphDims {
  /** images I, cells per image N, channels C, code dim D, centroids K, pairs P, query images Q */
  images: number;
  cells: number;
  channels: number;
  codeDim: number;
  k: number;
  pairs: number;
  queries: number;
}

export interface StepGraphOptions {
  /** MOON term on the query cells, acting on the nonlinear branch or the whole code; off when undefined. */
  moon?: RegularizerScope;
}

export const STEP_GRAPH_OUTPUTS = ['lossCorr', 'lossCluster', 'lossMoon', 'gradL1Weight', 'gradL1Bias', 'gradL2Weight', 'gradL2Bias', 'gradL3Weight', 'gradL3Bias', 'gradCentroids', 'clusterCounts'] as const;

/** Row-wise unit vectors u = v / max(|v|, eps); returns u and the divisor. [rows, d] */
function unitRows(g: GraphBuilder, v: string, eps: string, axis: number): { unit: string; norm: string } {
  const norm = g.atLeast(g.sqrt(g.reduceSum(g.mul(v, v), [axis])), eps);
  return { unit: g.div(v, norm), norm };
}

/** Backward of u = v / max(|v|, eps): dv = (du - u * <du, u>) / max(|v|, eps). */
function unitRowsBackward(g: GraphBuilder, du: string, unit: string, norm: string, axis: number): string {
  const along = g.reduceSum(g.mul(du, unit), [axis]);
  return g.div(g.sub(du, g.mul(unit, along)), norm);
}

export function buildStepGraph(dims: StepGraphDims, options: StepGraphOptions = {}): Uint8Array {
  const { images: I, cells: N, channels: C, codeDim: D, k: K, pairs: P, queries: Q } = dims;
  const IN = I * N;
  const QN = Q * N;
  const g = new GraphBuilder('fuss-train-step');

  const x = g.input('features', [IN, C]);
  const xUnit = g.input('featuresUnit', [I, N, C]);
  const mask1 = g.input('dropMask1', [I, 1, C]);
  const mask2 = g.input('dropMask2', [I, 1, C]);
  const w1 = g.input('l1Weight', [D, C]);
  const b1 = g.input('l1Bias', [D]);
  const w2 = g.input('l2Weight', [C, C]);
  const b2 = g.input('l2Bias', [C]);
  const w3 = g.input('l3Weight', [D, C]);
  const b3 = g.input('l3Bias', [D]);
  const m = g.input('centroids', [K, D]);
  const pairA = g.input('pairA', [P], OnnxDataType.int32);
  const pairB = g.input('pairB', [P], OnnxDataType.int32);
  const selAT = g.input('selectAT', [I, P]);
  const selBT = g.input('selectBT', [I, P]);
  const pairWeight = g.input('pairWeight', [P]);
  const pairShift = g.input('pairShift', [P]);
  const lambda = g.input('lambda', []);
  const eps = g.constant([UNIT_NORM_EPSILON]);

  // ---- Head forward: S = X1 W1^T + b1 + Z, Z = relu(X2 W2^T + b2) W3^T + b3
  const x3 = g.reshape(x, [I, N, C]);
  const x1 = g.reshape(g.mul(x3, mask1), [IN, C]);
  const x2 = g.reshape(g.mul(x3, mask2), [IN, C]);
  const a2 = g.linear(x2, w2, b2);
  const h = g.relu(a2);
  const z = g.linear(h, w3, b3);
  const s = g.add(g.linear(x1, w1, b1), z);
  const { unit: u, norm: uNorm } = unitRows(g, s, eps, 1);

  // ---- Correspondence loss (Eq. 6) over pairs
  const u3 = g.reshape(u, [I, N, D]);
  const ua = g.op('Gather', [u3, pairA], { axis: 0 }); // [P, N, D]
  const ub = g.op('Gather', [u3, pairB], { axis: 0 });
  const corr = g.matmul(ua, g.transpose(ub, [0, 2, 1])); // C = Ua Ub^T, [P, N, N]
  const fa = g.op('Gather', [xUnit, pairA], { axis: 0 }); // [P, N, C]
  const fb = g.op('Gather', [xUnit, pairB], { axis: 0 });
  const f = g.matmul(fa, g.transpose(fb, [0, 2, 1])); // [P, N, N]
  const fc = g.add(g.sub(f, g.reduceMean(f, [2])), g.reduceMean(f, [1, 2]));
  const target = g.sub(fc, g.reshape(pairShift, [P, 1, 1])); // Fc - shift
  const pairLoss = g.neg(g.reduceMean(g.mul(g.relu(corr), target), [1, 2], false)); // [P]
  const lossCorr = g.reduceSum(g.mul(pairWeight, pairLoss), [0], false);

  // Backward: dC = -(w_p / N^2) * (Fc - shift) * [C > 0]; dUa = dC Ub; dUb = dC^T Ua
  const scale = g.mul(g.reshape(pairWeight, [P, 1, 1]), g.constant([-1 / (N * N)]));
  const dCorr = g.mul(g.mul(scale, target), g.greaterMask(corr, g.constant([0])));
  const dUa = g.matmul(dCorr, ub);
  const dUb = g.matmul(g.transpose(dCorr, [0, 2, 1]), ua);
  // Scatter back to images: dU3[i] = sum_p [a_p = i] dUa[p] + [b_p = i] dUb[p], as two matrix products.
  const dU = g.reshape(
    g.add(g.matmul(selAT, g.reshape(dUa, [P, N * D])), g.matmul(selBT, g.reshape(dUb, [P, N * D]))),
    [IN, D],
  );
  let dS = unitRowsBackward(g, dU, u, uNorm, 1);
  let dZ = dS;

  // ---- Centroid loss (Eq. 5) on detached unit codes of the query cells
  const uq = g.sliceRows(u, 0, QN);
  const { unit: mh, norm: mNorm } = unitRows(g, m, eps, 1);
  const inner = g.matmul(uq, g.transpose(mh, [1, 0])); // [QN, K]
  // One-hot of the argmax (first maximum) as ArgMax == 0..K-1; WebGPU has no OneHot kernel.
  const assignment = g.toFloat(g.op('ArgMax', [inner], { axis: 1, keepdims: 1 })); // [QN, 1]
  const oneHot = g.equalMask(assignment, g.constant(Float32Array.from({ length: K }, (_, k) => k), [K])); // [QN, K]
  const attraction = g.div(g.neg(g.reduceSum(g.mul(oneHot, inner), [0, 1], false)), g.constant([QN]));
  // dMh from attraction: -(onehot^T Uq) / QN
  let dMh = g.div(g.neg(g.matmul(g.transpose(oneHot, [1, 0]), uq)), g.constant([QN]));
  let lossCluster = attraction;
  if (K > 1) {
    // lambda * mean_{k != l} <Mh_k, Mh_l> = lambda * (sum(Mh Mh^T) - sum(Mh * Mh)) / (K (K - 1))
    const pairsCount = g.constant([K * (K - 1)]);
    const gram = g.reduceSum(g.matmul(mh, g.transpose(mh, [1, 0])), [0, 1], false);
    const diagonal = g.reduceSum(g.mul(mh, mh), [0, 1], false);
    lossCluster = g.add(attraction, g.div(g.mul(lambda, g.sub(gram, diagonal)), pairsCount));
    // d/dMh_k = lambda * 2 * (sum_l Mh_l - Mh_k) / (K (K - 1))
    const repel = g.div(g.mul(g.mul(lambda, g.constant([2])), g.sub(g.reduceSum(mh, [0]), mh)), pairsCount);
    dMh = g.add(dMh, repel);
  }
  const dM = unitRowsBackward(g, dMh, mh, mNorm, 1);
  const counts = g.reduceSum(oneHot, [0], false);

  // ---- MOON on the query cells: weight * mean softplus((c(z, zp) - c(z, zg)) / tau)
  let lossMoon: string;
  if (options.moon) {
    const zg = g.input('moonGlobal', [QN, D]);
    const zp = g.input('moonPrevious', [QN, D]);
    const moonWeight = g.input('moonWeight', []);
    const invTau = g.input('moonInvTau', []);
    const zq = g.sliceRows(options.moon === 'head' ? s : z, 0, QN);
    const { unit: zu, norm: zNorm } = unitRows(g, zq, eps, 1);
    const zgu = unitRows(g, zg, eps, 1).unit;
    const zpu = unitRows(g, zp, eps, 1).unit;
    const cosG = g.reduceSum(g.mul(zu, zgu), [1]);
    const cosP = g.reduceSum(g.mul(zu, zpu), [1]);
    const logits = g.mul(g.sub(cosP, cosG), invTau); // [QN, 1]
    // softplus(x) = relu(x) + log(1 + exp(-|x|)): exact and overflow-free, from kernels WebGPU has.
    const softplus = g.add(g.relu(logits), g.log(g.add(g.constant([1]), g.exp(g.neg(g.abs(logits))))));
    lossMoon = g.div(g.mul(moonWeight, g.reduceSum(softplus, [0, 1], false)), g.constant([QN]));
    // d/dzu = weight / QN * sigmoid(logits) / tau * (zpu - zgu)
    const coefficient = g.mul(g.div(moonWeight, g.constant([QN])), g.mul(g.op('Sigmoid', [logits]), invTau));
    const dzu = g.mul(coefficient, g.sub(zpu, zgu));
    const dzq = unitRowsBackward(g, dzu, zu, zNorm, 1);
    const dzFull = I > Q ? g.concatRows([dzq, g.constant(new Float32Array((IN - QN) * D), [IN - QN, D])]) : dzq;
    if (options.moon === 'head') {
      dS = g.add(dS, dzFull);
      dZ = dS;
    } else {
      dZ = g.add(dS, dzFull);
    }
  } else {
    lossMoon = g.constant([0]);
  }

  // ---- Head backward
  // dW1 = dS^T X1, db1 = sum_rows dS; dW3 = dZ^T H, db3 = sum_rows dZ
  // dA2 = (dZ W3) * [A2 > 0]; dW2 = dA2^T X2, db2 = sum_rows dA2
  const gradW1 = g.matmul(g.transpose(dS, [1, 0]), x1);
  const gradB1 = g.reduceSum(dS, [0], false);
  const gradW3 = g.matmul(g.transpose(dZ, [1, 0]), h);
  const gradB3 = g.reduceSum(dZ, [0], false);
  const dA2 = g.mul(g.matmul(dZ, w3), g.greaterMask(a2, g.constant([0])));
  const gradW2 = g.matmul(g.transpose(dA2, [1, 0]), x2);
  const gradB2 = g.reduceSum(dA2, [0], false);

  g.output(lossCorr, 'lossCorr', []);
  g.output(lossCluster, 'lossCluster', []);
  g.output(lossMoon, 'lossMoon', []);
  g.output(gradW1, 'gradL1Weight', [D, C]);
  g.output(gradB1, 'gradL1Bias', [D]);
  g.output(gradW2, 'gradL2Weight', [C, C]);
  g.output(gradB2, 'gradL2Bias', [C]);
  g.output(gradW3, 'gradL3Weight', [D, C]);
  g.output(gradB3, 'gradL3Bias', [D]);
  g.output(dM, 'gradCentroids', [K, D]);
  g.output(counts, 'clusterCounts', [K]);
  return g.build();
}

/**
 * Forward-only graph for inference and for MOON's reference representations: features [rows, C] ->
 * `codes` [rows, D] and `branch` (the nonlinear branch Z) [rows, D]. Rows are dynamic.
 */
export function buildCodesGraph(channels: number, codeDim: number): Uint8Array {
  const g = new GraphBuilder('fuss-head-codes');
  const x = g.input('features', ['rows', channels]);
  const w1 = g.input('l1Weight', [codeDim, channels]);
  const b1 = g.input('l1Bias', [codeDim]);
  const w2 = g.input('l2Weight', [channels, channels]);
  const b2 = g.input('l2Bias', [channels]);
  const w3 = g.input('l3Weight', [codeDim, channels]);
  const b3 = g.input('l3Bias', [codeDim]);
  const z = g.linear(g.relu(g.linear(x, w2, b2)), w3, b3);
  g.output(g.add(g.linear(x, w1, b1), z), 'codes', ['rows', codeDim]);
  g.output(z, 'branch', ['rows', codeDim]);
  return g.build();
}
