// The `onnx` training engine: the step graph (step-graph.ts) run by onnxruntime-node on the chosen
// execution device (cpu, webgpu or cuda; device/execution-device.ts). Sessions are built once per batch
// shape and reused. FedProx, being element-wise, is added here in TypeScript.

import type * as Ort from 'onnxruntime-node';
import { createSessionOn, loadOnnxRuntime, toResolvedDevice, type DeviceChoice, type DeviceName } from '../../device/execution-device.js';
import { buildCodesGraph, buildStepGraph, type StepGraphDims } from './step-graph.js';
import {
  HEAD_PARAM_NAMES,
  NONLINEAR_PARAM_NAMES,
  type HeadParams,
  type HeadShape,
  type StepConfig,
  type StepResult,
  type TrainingEngine,
} from '../engine.js';

export interface OnnxEngineOptions {
  /** onnxruntime intra-op threads (0: all cores). */
  threads?: number;
  /** Execution provider (default cpu); unavailable providers fall back to the CPU with one log line. */
  device?: DeviceChoice;
  /**
   * Profile every session with onnxruntime's profiler (which node ran on which provider, how long);
   * `dispose()` writes one `<prefix>_<date>.json` trace per session (bench/gpu reads them).
   */
  profileFilePrefix?: string;
  log?: (line: string) => void;
}

const GRAD_OUTPUT: Record<(typeof HEAD_PARAM_NAMES)[number], string> = {
  l1Weight: 'gradL1Weight',
  l1Bias: 'gradL1Bias',
  l2Weight: 'gradL2Weight',
  l2Bias: 'gradL2Bias',
  l3Weight: 'gradL3Weight',
  l3Bias: 'gradL3Bias',
};

/** FedProx term mu/2 |theta - theta_global|^2 over the scoped parameters; adds mu (theta - theta_global) to grads. */
export function addProximalTerm(head: HeadParams, grads: HeadParams, prox: NonNullable<StepConfig['prox']>): number {
  const names = prox.scope === 'head' ? HEAD_PARAM_NAMES : NONLINEAR_PARAM_NAMES;
  let sum = 0;
  for (const name of names) {
    const theta = head[name];
    const reference = prox.globalHead[name];
    const grad = grads[name];
    for (let i = 0; i < theta.length; i++) {
      const diff = theta[i] - reference[i];
      sum += diff * diff;
      grad[i] += prox.mu * diff;
    }
  }
  return (prox.mu / 2) * sum;
}

export async function createOnnxEngine(options: OnnxEngineOptions = {}): Promise<TrainingEngine> {
  const ort = await loadOnnxRuntime();
  const device = await toResolvedDevice(options.device, options.log);
  const sessionOptions: Ort.InferenceSession.SessionOptions = {
    intraOpNumThreads: options.threads ?? 0,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    ...(options.profileFilePrefix ? { enableProfiling: true, profileFilePrefix: options.profileFilePrefix } : {}),
  };
  const stepSessions = new Map<string, Promise<Ort.InferenceSession>>();
  const codeSessions = new Map<string, Promise<Ort.InferenceSession>>();
  /** The device sessions run on: the resolved one, or cpu once a session had to fall back. */
  let inUse: DeviceName = device.name;
  const open = async (model: Uint8Array) => {
    const created = await createSessionOn(model, sessionOptions, device, { what: 'engine', log: options.log });
    if (created.device !== device.name) inUse = created.device;
    return created.session;
  };

  const stepSession = (dims: StepGraphDims, moon: StepConfig['moon']) => {
    const key = JSON.stringify([dims, moon?.scope ?? 'off']);
    let session = stepSessions.get(key);
    if (!session) {
      session = open(buildStepGraph(dims, { moon: moon?.scope }));
      stepSessions.set(key, session);
    }
    return session;
  };
  const codeSession = (shape: HeadShape) => {
    const key = `${shape.channels}x${shape.codeDim}`;
    let session = codeSessions.get(key);
    if (!session) {
      session = open(buildCodesGraph(shape.channels, shape.codeDim));
      codeSessions.set(key, session);
    }
    return session;
  };
  const f32 = (data: Float32Array, dims: number[]) => new ort.Tensor('float32', data, dims);
  const headFeeds = (head: HeadParams, shape: HeadShape): Record<string, Ort.Tensor> => {
    const { channels: C, codeDim: D } = shape;
    return {
      l1Weight: f32(head.l1Weight, [D, C]),
      l1Bias: f32(head.l1Bias, [D]),
      l2Weight: f32(head.l2Weight, [C, C]),
      l2Bias: f32(head.l2Bias, [C]),
      l3Weight: f32(head.l3Weight, [D, C]),
      l3Bias: f32(head.l3Bias, [D]),
    };
  };
  const runCodes = async (head: HeadParams, shape: HeadShape, features: Float32Array, rows: number) => {
    const session = await codeSession(shape);
    const out = await session.run({ features: f32(features, [rows, shape.channels]), ...headFeeds(head, shape) });
    return { codes: out.codes.data as Float32Array, branch: out.branch.data as Float32Array };
  };

  const threads = options.threads ? `${options.threads} threads` : 'all cores';
  const engine: TrainingEngine = {
    name: 'onnx',
    get device() {
      return inUse;
    },
    get description() {
      return `onnx (onnxruntime-node, ${inUse}${inUse === 'cpu' ? `, ${threads}` : ''})`;
    },

    async step(head, centroids, shape, batch, config): Promise<StepResult> {
      const { channels: C, codeDim: D } = shape;
      const { images: I, cells: N, queries: Q } = batch;
      const P = batch.pairA.length;
      const dims: StepGraphDims = { images: I, cells: N, channels: C, codeDim: D, k: config.k, pairs: P, queries: Q };
      const session = await stepSession(dims, config.moon);
      const selectAT = new Float32Array(I * P);
      const selectBT = new Float32Array(I * P);
      for (let p = 0; p < P; p++) {
        selectAT[batch.pairA[p] * P + p] = 1;
        selectBT[batch.pairB[p] * P + p] = 1;
      }
      const feeds: Record<string, Ort.Tensor> = {
        features: f32(batch.features, [I * N, C]),
        featuresUnit: f32(batch.featuresUnit, [I, N, C]),
        dropMask1: f32(batch.dropMask1, [I, 1, C]),
        dropMask2: f32(batch.dropMask2, [I, 1, C]),
        ...headFeeds(head, shape),
        centroids: f32(centroids, [config.k, D]),
        pairA: new ort.Tensor('int32', batch.pairA, [P]),
        pairB: new ort.Tensor('int32', batch.pairB, [P]),
        selectAT: f32(selectAT, [I, P]),
        selectBT: f32(selectBT, [I, P]),
        pairWeight: f32(batch.pairWeight, [P]),
        pairShift: f32(batch.pairShift, [P]),
        lambda: f32(new Float32Array([config.lambda]), []),
      };
      if (config.moon) {
        const queryFeatures = batch.features.subarray(0, Q * N * C);
        const pick = config.moon.scope === 'head' ? 'codes' : 'branch';
        const [global, previous] = await Promise.all([
          runCodes(config.moon.globalHead, shape, queryFeatures, Q * N),
          runCodes(config.moon.previousHead, shape, queryFeatures, Q * N),
        ]);
        feeds.moonGlobal = f32(global[pick], [Q * N, D]);
        feeds.moonPrevious = f32(previous[pick], [Q * N, D]);
        feeds.moonWeight = f32(new Float32Array([config.moon.weight]), []);
        feeds.moonInvTau = f32(new Float32Array([1 / config.moon.tau]), []);
      }
      const out = await session.run(feeds);
      const value = (name: string) => (out[name].data as Float32Array)[0];
      const headGrad = Object.fromEntries(
        HEAD_PARAM_NAMES.map((name) => [name, new Float32Array(out[GRAD_OUTPUT[name]].data as Float32Array)]),
      ) as unknown as HeadParams;
      const prox = config.prox ? addProximalTerm(head, headGrad, config.prox) : 0;
      const parts = { corr: value('lossCorr'), cluster: value('lossCluster'), moon: value('lossMoon'), prox };
      return {
        loss: parts.corr + parts.cluster + parts.moon + parts.prox,
        parts,
        headGrad,
        centroidGrad: new Float32Array(out.gradCentroids.data as Float32Array),
        clusterCounts: Int32Array.from(out.clusterCounts.data as Float32Array, Math.round),
      };
    },

    async codes(head, shape, features, cells) {
      return (await runCodes(head, shape, features, cells)).codes;
    },

    async dispose() {
      const sessions = await Promise.all([...stepSessions.values(), ...codeSessions.values()]);
      if (options.profileFilePrefix) for (const s of sessions) s.endProfiling();
      await Promise.all(sessions.map((s) => s.release()));
      stepSessions.clear();
      codeSessions.clear();
    },
  };
  return engine;
}
