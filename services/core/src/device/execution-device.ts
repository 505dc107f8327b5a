// Execution devices of onnxruntime sessions (backbone, `onnx` training engine, /segment), in one place.
// Each provider registers a name, a priority and a precheck of its native library; a probe creates and
// runs a tiny session on it, once per process. `resolveDevice` turns `--device auto|cpu|webgpu|cuda`
// into the provider to use and logs one line saying what it chose and why the others were not used, as
// onnxruntime's own resolveBackend (js/common/lib/backend-impl.ts) does for its backends. A provider that
// fails never fails the caller: it falls back to the CPU with that line.

import type * as Ort from 'onnxruntime-node';
import { ConfigError, firstLineOf } from '../errors.js';
import { buildOnnxModel, OnnxDataType } from '../onnx/model-builder.js';
import { cudaProviderLibrary, sharedLibraryFound } from './native-libraries.js';

export const DEVICE_NAMES = ['cpu', 'webgpu', 'cuda'] as const;
/** An onnxruntime execution provider FUSS can run on. */
export type DeviceName = (typeof DEVICE_NAMES)[number];
/** What a user asks for: a provider, or `auto` (cuda, then webgpu, then cpu). */
export type DeviceRequest = 'auto' | DeviceName;
export const DEVICE_REQUESTS: readonly DeviceRequest[] = ['auto', ...DEVICE_NAMES];

/** Whether a provider works on this machine, and why not when it does not. */
export interface ProviderStatus {
  name: DeviceName;
  available: boolean;
  /** Why the provider cannot be used (absent when available). */
  reason?: string;
}

/** The outcome of {@link resolveDevice}: the provider sessions are created on. */
export interface ResolvedDevice {
  readonly name: DeviceName;
  /** `executionProviders` for onnxruntime session options (onnxruntime adds the CPU for unsupported nodes). */
  readonly executionProviders: readonly string[];
  /** The one line logged about the choice. */
  readonly line: string;
}

interface ProviderEntry {
  name: DeviceName;
  /** Higher is tried first under `auto`. */
  priority: number;
  /** Why the provider cannot work here, found without asking onnxruntime (a missing library); undefined if it may. */
  precheck(supported: readonly string[]): string | undefined;
}

const PROVIDERS: readonly ProviderEntry[] = [
  { name: 'cuda', priority: 2, precheck: cudaPrecheck },
  { name: 'webgpu', priority: 1, precheck: webgpuPrecheck },
  { name: 'cpu', priority: 0, precheck: () => undefined },
];

function cudaPrecheck(supported: readonly string[]): string | undefined {
  if (!supported.includes('cuda')) return `this onnxruntime-node build (${process.platform}-${process.arch}) has no CUDA execution provider`;
  if (!cudaProviderLibrary()) {
    return 'onnxruntime CUDA provider library (libonnxruntime_providers_cuda.so) is not installed next to onnxruntime-node; '
      + 'it needs CUDA 12 and cuDNN 9 (ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install downloads it)';
  }
  return undefined;
}

function webgpuPrecheck(supported: readonly string[]): string | undefined {
  if (!supported.includes('webgpu')) return `this onnxruntime-node build (${process.platform}-${process.arch}) has no WebGPU execution provider`;
  // On Linux onnxruntime's WebGPU (Dawn) runs on Vulkan; without the loader Dawn only prints a warning.
  if (process.platform === 'linux' && !sharedLibraryFound('libvulkan.so.1')) {
    return 'Vulkan loader libvulkan.so.1 not found (install libvulkan1 and the GPU vendor\'s Vulkan driver)';
  }
  return undefined;
}

let ortModule: Promise<typeof Ort> | undefined;
/** onnxruntime-node, imported once on first use. */
export function loadOnnxRuntime(): Promise<typeof Ort> {
  ortModule ??= import('onnxruntime-node');
  return ortModule;
}

/**
 * onnxruntime's provider errors start with a source location and an assertion
 * ("/onnxruntime_src/...webgpu_context.cc:136 ... was false. Failed to get a WebGPU adapter: ...");
 * keeps the part a user can act on.
 */
export function conciseProviderError(err: unknown): string {
  const line = firstLineOf(err).trim();
  const afterAssertion = / was false\. (.+)$/.exec(line);
  if (afterAssertion) return afterAssertion[1].trim();
  return line.replace(/^\/?\S*onnxruntime_src\/\S+:\d+\s+/, '').trim();
}

/** x [2, 2] times a constant [2, 2]: small enough to create anywhere, a real kernel on every provider. */
const PROBE_WEIGHT = [1, 2, 3, 4];
const PROBE_INPUT = [0.5, -1, 2, 0.25];
function probeModel(): Uint8Array {
  return buildOnnxModel({
    name: 'fuss-device-probe',
    inputs: [{ name: 'x', elemType: OnnxDataType.float, dims: [2, 2] }],
    outputs: [{ name: 'y', elemType: OnnxDataType.float, dims: [2, 2] }],
    initializers: [{ name: 'w', dims: [2, 2], data: Float32Array.from(PROBE_WEIGHT) }],
    nodes: [{ op: 'MatMul', inputs: ['x', 'w'], outputs: ['y'] }],
  });
}

async function probeUncached(name: DeviceName): Promise<ProviderStatus> {
  let ort: typeof Ort;
  try {
    ort = await loadOnnxRuntime();
  } catch (err) {
    return { name, available: false, reason: `onnxruntime-node cannot load: ${firstLineOf(err)}` };
  }
  const supported = ort.listSupportedBackends().map((b) => b.name);
  const blocked = PROVIDERS.find((p) => p.name === name)!.precheck(supported);
  if (blocked) return { name, available: false, reason: blocked };
  let session: Ort.InferenceSession | undefined;
  try {
    session = await ort.InferenceSession.create(probeModel(), { executionProviders: [name], logSeverityLevel: 3 });
    const out = await session.run({ x: new ort.Tensor('float32', Float32Array.from(PROBE_INPUT), [2, 2]) });
    const y = out.y.data as Float32Array;
    const [a, b, c, d] = PROBE_INPUT;
    const expected = [a * 1 + b * 3, a * 2 + b * 4, c * 1 + d * 3, c * 2 + d * 4];
    if (expected.some((v, i) => Math.abs(v - y[i]) > 1e-5)) {
      return { name, available: false, reason: `a 2x2 MatMul gave [${Array.from(y)}] instead of [${expected}]` };
    }
    return { name, available: true };
  } catch (err) {
    return { name, available: false, reason: conciseProviderError(err) };
  } finally {
    await session?.release().catch(() => undefined);
  }
}

const probes = new Map<DeviceName, Promise<ProviderStatus>>();

/** Whether a provider works here: its precheck, then a tiny session created and run on it. Cached per process. */
export function probeProvider(name: DeviceName): Promise<ProviderStatus> {
  let status = probes.get(name);
  if (!status) {
    status = probeUncached(name);
    probes.set(name, status);
  }
  return status;
}

/** Every provider's status, in the order cpu, webgpu, cuda (for `fuss doctor`). */
export async function probeAllProviders(): Promise<ProviderStatus[]> {
  return Promise.all(DEVICE_NAMES.map((name) => probeProvider(name)));
}

export function isDeviceRequest(value: string): value is DeviceRequest {
  return (DEVICE_REQUESTS as readonly string[]).includes(value);
}

export interface ResolveDeviceOptions {
  /** Where the one line about the choice goes (default: nowhere). */
  log?: (line: string) => void;
  /** Replaces {@link probeProvider} (tests of the choice itself). */
  probe?: (name: DeviceName) => Promise<ProviderStatus>;
}

function resolved(name: DeviceName, line: string): ResolvedDevice {
  return { name, executionProviders: [name], line };
}

/**
 * Chooses the provider for `request`: `auto` tries cuda, then webgpu, then cpu; a named provider that
 * is unavailable falls back to cpu. Logs exactly one line, e.g.
 * `device: cpu (auto; cuda unavailable: ...; webgpu unavailable: ...)`. Throws only if the CPU itself fails.
 */
export async function resolveDevice(request: DeviceRequest = 'cpu', options: ResolveDeviceOptions = {}): Promise<ResolvedDevice> {
  if (!isDeviceRequest(request)) throw new ConfigError(`unknown device "${String(request)}"; choose ${DEVICE_REQUESTS.join(', ')}`);
  const probe = options.probe ?? probeProvider;
  const candidates = request === 'auto' ? [...PROVIDERS].sort((a, b) => b.priority - a.priority).map((p) => p.name) : [request];
  const refused: ProviderStatus[] = [];
  let chosen: DeviceName | undefined;
  for (const name of candidates) {
    const status = await probe(name);
    if (status.available) {
      chosen = name;
      break;
    }
    refused.push(status);
  }
  const why = refused.map((s) => `${s.name} unavailable: ${s.reason}`).join('; ');
  let line: string;
  if (chosen && request === 'auto') {
    line = `device: ${chosen} (auto${why ? `; ${why}` : ''})`;
  } else if (chosen) {
    line = `device: ${chosen} (requested)`;
  } else {
    const cpu = request === 'cpu' ? refused[0] : await probe('cpu');
    if (!cpu.available) throw new ConfigError(`onnxruntime cannot run on the CPU: ${cpu.reason}`);
    chosen = 'cpu';
    line = `device: cpu (${request} requested but unavailable: ${refused[0].reason})`;
  }
  options.log?.(line);
  return resolved(chosen, line);
}

/** A device given either as a request (resolved here, logging its line) or as already resolved (silent). */
export type DeviceChoice = DeviceRequest | ResolvedDevice;

/** A choice as a ResolvedDevice: given none, the CPU, without a probe or a log line (nobody asked). */
export async function toResolvedDevice(choice: DeviceChoice | undefined, log?: (line: string) => void): Promise<ResolvedDevice> {
  if (choice === undefined) return resolved('cpu', 'device: cpu (default)');
  if (typeof choice === 'object') return choice;
  return resolveDevice(choice, { log });
}

/**
 * Creates an onnxruntime session on `device`; if the provider refuses this model, logs one line and
 * creates it on the CPU instead. Resolves to the session and the device it actually runs on.
 */
export async function createSessionOn(
  model: Uint8Array,
  base: Ort.InferenceSession.SessionOptions,
  device: ResolvedDevice,
  options: { what: string; log?: (line: string) => void },
): Promise<{ session: Ort.InferenceSession; device: DeviceName }> {
  const ort = await loadOnnxRuntime();
  if (device.name !== 'cpu') {
    try {
      const session = await ort.InferenceSession.create(model, { ...base, executionProviders: [...device.executionProviders] });
      return { session, device: device.name };
    } catch (err) {
      options.log?.(`${options.what}: ${device.name} could not load the model (${conciseProviderError(err)}); falling back to cpu`);
    }
  }
  return { session: await ort.InferenceSession.create(model, base), device: 'cpu' };
}
