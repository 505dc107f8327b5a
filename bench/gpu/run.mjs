// GPU checks and benchmarks in one run (bench/gpu/run.sh prepares the machine and calls this):
//   parity   the onnx engine's loss and gradients against the float64 reference on each GPU provider
//   step     the training step, paper's ViT-B/8 shape, sampled and full grid, on each provider against
//            the CPU of the same machine (with the largest difference of the GPU's results from the CPU's)
//   profile  onnxruntime's profiler: which nodes of the step graph ran on the GPU provider, which on the CPU
//   backbone features per second: a ViT-B/8-shaped encoder (random weights) and MobileNetV2-int8 when found
//   peak     a chain of 4096^2 fp32 MatMuls on each provider: the GPU's fp32 reference through onnxruntime
//   binding  whether onnxruntime-node keeps a provider's outputs on the device between runs (IO binding)
// Prints a table per part and writes bench/gpu/out/results.json. Parts that would overrun --budget are
// skipped and listed. --dry-run runs every part on the CPU with small sizes, to check the script itself.
// Usage: node bench/gpu/run.mjs [--dry-run] [--devices webgpu,cuda] [--budget 260] [--doctor FILE] [--threads 0]

import { parseArgs } from 'node:util';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';
import { Backbone, buildOnnxModel, createEngine, createRng, initCentroids, initHead, OnnxDataType, probeAllProviders, resolveDevice } from '@fuss/core';
import { measureParity, PARITY_CASES, PARITY_RTOL } from '../../services/core/dist/engines/test-support/provider-parity.js';
import { WEBGPU_OPERATORS } from '../../services/core/dist/engines/onnx/webgpu-operators.js';
import { median, printTable, writeResults } from '../common.mjs';
import { SHAPES, stepFlops, syntheticBatch } from '../train-step/step-case.mjs';
import { buildVitEncoder, vitFlops } from './vit-encoder.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const { values } = parseArgs({
  options: {
    'dry-run': { type: 'boolean' },
    devices: { type: 'string', default: 'webgpu,cuda' },
    budget: { type: 'string', default: '260' },
    doctor: { type: 'string' },
    threads: { type: 'string', default: '0' },
  },
});
const dry = Boolean(values['dry-run']);
const threads = Number(values.threads);
const started = performance.now();
const secondsLeft = () => Number(values.budget) - (performance.now() - started) / 1000;
const log = (line) => console.error(line);
const outDir = join(here, 'out');
mkdirSync(outDir, { recursive: true });

function gpuName() {
  try {
    return execFileSync('nvidia-smi', ['--query-gpu=name,driver_version,memory.total', '--format=csv,noheader'], { encoding: 'utf8', timeout: 10_000 }).trim();
  } catch {
    return null;
  }
}

const statuses = await probeAllProviders();
const wanted = dry ? ['cpu'] : values.devices.split(',').map((d) => d.trim());
const targets = wanted.filter((d) => statuses.find((s) => s.name === d)?.available);
if (targets.length === 0) {
  const why = statuses.filter((s) => wanted.includes(s.name)).map((s) => `${s.name}: ${s.reason}`).join('; ');
  console.error(`error: no GPU execution provider works here (${why}); bench/gpu/run.sh --dry-run exercises the CPU paths`);
  process.exit(1);
}
/** Devices timed: each target, then the CPU anchor of the same machine (the target itself in a dry run). */
const timed = dry ? targets : [...targets, 'cpu'];
const resolved = Object.fromEntries(await Promise.all(timed.map(async (d) => [d, await resolveDevice(d, { log })])));
log(`targets: ${targets.join(', ')}${dry ? ' (dry run on the CPU)' : ''}; ${Math.round(secondsLeft())} s of budget`);

const doctor = values.doctor && existsSync(values.doctor) ? JSON.parse(readFileSync(values.doctor, 'utf8')) : undefined;
const results = { dryRun: dry, targets, providers: statuses, skipped: [] };
const tables = [];
let printed = 0;
/** Prints the tables not printed yet and rewrites results.json: a crash or a timeout keeps what was done. */
function save() {
  for (const [title, rows] of tables.slice(printed)) {
    if (!rows.length) continue;
    console.log(`\n${title}`);
    printTable(rows);
  }
  printed = tables.length;
  return writeResults('gpu', { gpu: gpuName(), threads, seconds: Number(((performance.now() - started) / 1000).toFixed(1)), doctor, ...results });
}

/** Runs a part unless fewer than `needs` seconds of the budget are left. */
async function part(name, needs, fn) {
  if (secondsLeft() < needs) {
    results.skipped.push(`${name}: needs ~${needs} s, ${Math.round(secondsLeft())} s left`);
    log(`${name}: skipped (time budget)`);
    return;
  }
  const t = performance.now();
  try {
    await fn();
  } catch (err) {
    results.skipped.push(`${name}: failed: ${String(err?.message ?? err).split('\n')[0]}`);
    log(`${name}: failed: ${err?.stack ?? err}`);
  }
  log(`${name}: ${((performance.now() - t) / 1000).toFixed(1)} s`);
  save();
}

// ---- parity
await part('parity', 20, async () => {
  const rows = [];
  for (const device of targets) {
    const engine = await createEngine('onnx', { threads, device: resolved[device] });
    for (const { label, options } of PARITY_CASES) {
      const r = await measureParity(engine, label, options);
      const pass = r.worst < PARITY_RTOL && r.clusterCountsEqual && r.skipped < r.checked / 20;
      rows.push({ device: engine.device, case: label, 'worst rel. error': r.worst.toExponential(2), components: r.checked, 'counts equal': r.clusterCountsEqual, pass });
    }
    await engine.dispose();
  }
  results.parity = rows;
  tables.push(['Parity with the float64 reference (bound 1e-3)', rows]);
});

// ---- training step, ViT-B/8 shape
function maxRelativeDifference(a, b) {
  let worst = Math.abs(a.loss - b.loss) / Math.max(1e-6, Math.abs(b.loss));
  const pairs = [...Object.keys(b.headGrad).map((k) => [a.headGrad[k], b.headGrad[k]]), [a.centroidGrad, b.centroidGrad]];
  for (const [x, y] of pairs) {
    let scale = 0;
    let diff = 0;
    for (let i = 0; i < y.length; i++) {
      scale = Math.max(scale, Math.abs(y[i]));
      diff = Math.max(diff, Math.abs(x[i] - y[i]));
    }
    worst = Math.max(worst, scale ? diff / scale : diff);
  }
  return worst;
}

const shape = SHAPES.vitb8;
const headShape = { channels: shape.channels, codeDim: shape.codeDim };
const stepInputs = (mode) => {
  const rng = createRng(1);
  const batch = syntheticBatch(shape, mode, rng);
  return { batch, head: initHead(headShape, rng), centroids: initCentroids(shape.k, shape.codeDim, rng), config: { k: shape.k, lambda: 0 } };
};

await part('step', 60, async () => {
  const rows = [];
  for (const mode of ['sampled', 'full']) {
    const { batch, head, centroids, config } = stepInputs(mode);
    const flops = stepFlops({ images: batch.images, cells: batch.cells, channels: shape.channels, codeDim: shape.codeDim, pairs: batch.pairA.length });
    const byDevice = {};
    for (const device of [...timed].reverse()) { // CPU anchor first: its result is the reference
      if (secondsLeft() < 20) {
        results.skipped.push(`step ${mode} on ${device}: time budget`);
        continue;
      }
      const engine = await createEngine('onnx', { threads, device: resolved[device] });
      const gpu = device !== 'cpu';
      const [warm, repeats] = dry ? [1, mode === 'full' ? 1 : 3] : gpu ? [3, 10] : [1, mode === 'full' ? 3 : 5];
      const times = [];
      let last;
      for (let i = 0; i < warm + repeats; i++) {
        const t = performance.now();
        last = await engine.step(head, centroids, headShape, batch, config);
        if (i >= warm) times.push(performance.now() - t);
      }
      await engine.dispose();
      const ms = median(times);
      byDevice[device] = { ms, result: last };
      const anchor = byDevice.cpu;
      rows.push({
        mode,
        cells: batch.cells,
        device: engine.device,
        'ms/step': ms.toFixed(1),
        'GFLOP/s': (flops / (ms / 1000) / 1e9).toFixed(0),
        'x CPU': anchor && device !== 'cpu' ? (anchor.ms / ms).toFixed(1) : '',
        'max rel. diff vs CPU': anchor && device !== 'cpu' ? maxRelativeDifference(last, anchor.result).toExponential(1) : '',
      });
      log(JSON.stringify(rows.at(-1)));
    }
  }
  results.step = rows;
  tables.push([`Training step, ${shape.label} (8 queries + 8 neighbours, C 768, D 70, K 27)`, rows]);
});

// ---- profile: node placement of the step graph
function summariseProfile(file) {
  const events = JSON.parse(readFileSync(file, 'utf8')).filter((e) => e.cat === 'Node' && e.name.endsWith('_kernel_time'));
  const lastRun = new Map(); // node name -> its last event (the final step)
  for (const e of events) lastRun.set(e.name, e);
  const byProvider = {};
  for (const e of lastRun.values()) {
    const p = (byProvider[e.args.provider] ??= { nodes: 0, us: 0, ops: {} });
    p.nodes++;
    p.us += e.dur;
    p.ops[e.args.op_name] = (p.ops[e.args.op_name] ?? 0) + 1;
  }
  return byProvider;
}

await part('profile', 30, async () => {
  const rows = [];
  for (const device of targets) {
    for (const mode of ['sampled', 'full']) {
      if (secondsLeft() < 15) continue;
      const prefix = join(outDir, `profile-${device}-${mode}`);
      for (const f of readdirSync(outDir)) if (f.startsWith(`profile-${device}-${mode}_`)) rmSync(join(outDir, f));
      const { batch, head, centroids, config } = stepInputs(mode);
      const engine = await createEngine('onnx', { threads, device: resolved[device], profileFilePrefix: prefix });
      for (let i = 0; i < 2; i++) await engine.step(head, centroids, headShape, batch, config);
      await engine.dispose();
      const file = readdirSync(outDir).filter((f) => f.startsWith(`profile-${device}-${mode}_`)).sort().at(-1);
      const summary = summariseProfile(join(outDir, file));
      for (const [provider, s] of Object.entries(summary)) {
        const ops = Object.entries(s.ops).sort((a, b) => b[1] - a[1]).map(([op, n]) => `${op} ${n}`).join(', ');
        // Nodes a GPU provider left to the CPU, of operators outside the WebGPU list (CPU-only fusions included).
        const missing = device === 'cpu' || provider !== 'CPUExecutionProvider' ? [] : Object.keys(s.ops).filter((op) => !WEBGPU_OPERATORS.has(op));
        rows.push({ device, mode, provider, nodes: s.nodes, 'kernel ms': (s.us / 1000).toFixed(1), ops: ops.length > 90 ? `${ops.slice(0, 87)}...` : ops, 'not in WebGPU list': missing.join(' ') });
      }
      results.profile ??= [];
      results.profile.push({ device, mode, file, byProvider: summary });
    }
  }
  tables.push(['Step graph node placement (onnxruntime profiler, last of 2 steps)', rows]);
});

// ---- backbone features per second
const assets = [process.env.FUSS_ASSETS && join(process.env.FUSS_ASSETS, 'models'), join(here, '..', '..', '.gpu', 'assets'), join(here, '..', '..', '..', 'shared', 'models')].filter(Boolean);
const mobilenet = assets.map((d) => join(d, 'mobilenetv2-int8-features.onnx')).find((p) => existsSync(p));

await part('backbone', 40, async () => {
  const layers = dry ? 1 : 12;
  const vitPath = join(outDir, `vit-b8-synthetic-${layers}.onnx`);
  if (!existsSync(vitPath)) writeFileSync(vitPath, buildVitEncoder(layers));
  const models = [{ label: `ViT-B/8 shape (${layers} layers, random), 224x224`, path: vitPath, width: 224, height: 224, flops: vitFlops(layers) }];
  if (mobilenet) models.push({ label: 'MobileNetV2 int8, 480x360', path: mobilenet, width: 480, height: 360 });
  else results.skipped.push('backbone MobileNetV2: model not found (copy it to .gpu/assets or set FUSS_ASSETS)');
  const rows = [];
  for (const model of models) {
    const png = await sharp({ create: { width: model.width, height: model.height, channels: 3, background: { r: 90, g: 140, b: 200 } } }).png().toBuffer();
    for (const device of timed) {
      if (secondsLeft() < 15) {
        results.skipped.push(`backbone ${model.label} on ${device}: time budget`);
        continue;
      }
      const backbone = await Backbone.open(model.path, { threads, device: resolved[device], log });
      const image = await backbone.decode(png, 'probe.png');
      const gpu = device !== 'cpu';
      const [warm, repeats] = dry ? [1, 2] : gpu ? [3, 20] : [1, 5];
      const times = [];
      for (let i = 0; i < warm + repeats; i++) {
        const t = performance.now();
        await backbone.extractDecoded(image);
        if (i >= warm) times.push(performance.now() - t);
      }
      const ms = median(times);
      rows.push({ backbone: model.label, device: backbone.device, 'ms/image': ms.toFixed(1), 'images/s': (1000 / ms).toFixed(1), 'GFLOP/s': model.flops ? (model.flops / (ms / 1000) / 1e9).toFixed(0) : '' });
      log(JSON.stringify(rows.at(-1)));
      await backbone.close();
    }
  }
  results.backbone = rows;
  tables.push(['Backbone forward (decoded image in, [C, h, w] features out)', rows]);
});

// ---- peak: a chain of fp32 MatMuls through onnxruntime on each provider
function matmulChain(n, depth) {
  let state = 12345;
  const uniform = () => ((state = (state * 1103515245 + 12345) >>> 0) / 2 ** 31 - 1) * Math.sqrt(3 / n);
  const nodes = [{ op: 'Mul', inputs: ['a', 's'], outputs: ['y0'] }];
  for (let i = 1; i <= depth; i++) nodes.push({ op: 'MatMul', inputs: [`y${i - 1}`, 'b'], outputs: [`y${i}`] });
  nodes.push({ op: 'ReduceSum', inputs: [`y${depth}`], outputs: ['total'], attributes: { keepdims: 0 } });
  return buildOnnxModel({
    name: `matmul-${n}x${depth}`,
    inputs: [{ name: 's', elemType: OnnxDataType.float, dims: [1] }],
    outputs: [{ name: 'total', elemType: OnnxDataType.float, dims: [] }],
    initializers: [
      { name: 'a', dims: [n, n], data: Float32Array.from({ length: n * n }, uniform) },
      { name: 'b', dims: [n, n], data: Float32Array.from({ length: n * n }, uniform) },
    ],
    nodes,
  });
}

await part('peak', 25, async () => {
  const rows = [];
  for (const device of timed) {
    const [n, depth, repeats] = dry ? [512, 2, 3] : device === 'cpu' ? [2048, 2, 3] : [4096, 8, 10];
    const session = await ort.InferenceSession.create(matmulChain(n, depth), { executionProviders: [device], intraOpNumThreads: threads, logSeverityLevel: 3 });
    const s = new ort.Tensor('float32', Float32Array.from([1]), [1]);
    const times = [];
    for (let i = 0; i < repeats + 2; i++) {
      const t = performance.now();
      await session.run({ s });
      if (i >= 2) times.push(performance.now() - t);
    }
    await session.release();
    const ms = median(times);
    rows.push({ device, 'matrix size': n, 'products per run': depth, 'ms/run': ms.toFixed(1), 'TFLOP/s': ((2 * n ** 3 * depth) / (ms / 1000) / 1e12).toFixed(2) });
  }
  results.peak = rows;
  tables.push(['fp32 MatMul chain through onnxruntime (peak reference for the same data type)', rows]);
});

// ---- IO binding: can outputs stay on the device between runs?
await part('binding', 5, async () => {
  const rows = [];
  const addOne = buildOnnxModel({
    name: 'add-one',
    inputs: [{ name: 'x', elemType: OnnxDataType.float, dims: [4] }],
    outputs: [{ name: 'y', elemType: OnnxDataType.float, dims: [4] }],
    initializers: [{ name: 'one', dims: [1], data: Float32Array.from([1]) }],
    nodes: [{ op: 'Add', inputs: ['x', 'one'], outputs: ['y'] }],
  });
  for (const device of targets.filter((d) => d === 'webgpu' || dry)) {
    const row = { device, 'output location': '', 'fed back on device': '', 'read back': '' };
    try {
      const onDevice = await ort.InferenceSession.create(addOne, { executionProviders: [device], preferredOutputLocation: 'gpu-buffer', logSeverityLevel: 3 });
      const first = (await onDevice.run({ x: new ort.Tensor('float32', Float32Array.from([1, 2, 3, 4]), [4]) })).y;
      row['output location'] = first.location;
      const second = (await onDevice.run({ x: first })).y;
      row['fed back on device'] = second.location;
      const toHost = await ort.InferenceSession.create(addOne, { executionProviders: [device], logSeverityLevel: 3 });
      row['read back'] = Array.from((await toHost.run({ x: second })).y.data).join(' '); // expect 4 5 6 7
    } catch (err) {
      row['read back'] = `failed: ${String(err?.message ?? err).split('\n')[0].slice(0, 100)}`;
    }
    rows.push(row);
  }
  if (rows.length) {
    results.binding = rows;
    tables.push(['IO binding (preferredOutputLocation gpu-buffer; 1 2 3 4 + 1 + 1 + 1 = 4 5 6 7)', rows]);
  }
});

if (results.skipped.length) console.log(`\nskipped: ${results.skipped.join('; ')}`);
console.log(`\nwritten ${save()}`);
const parityFailed = (results.parity ?? []).some((r) => !r.pass);
process.exitCode = parityFailed ? 1 : 0;
