// The device choice with stated provider statuses (every branch of the one log line), then against the
// real providers of this machine: the CPU always works; WebGPU and CUDA, where their native libraries
// are missing (as on CPU-only machines and CI), are unavailable with the reason and fall back.

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  conciseProviderError,
  createSessionOn,
  probeAllProviders,
  probeProvider,
  resolveDevice,
  toResolvedDevice,
  type DeviceName,
  type DeviceRequest,
  type ProviderStatus,
} from './execution-device.js';
import { cudaProviderLibrary, sharedLibraryFound } from './native-libraries.js';
import { ConfigError } from '../errors.js';
import { buildOnnxModel, OnnxDataType } from '../onnx/model-builder.js';

const statuses = (available: Partial<Record<DeviceName, boolean>>) => async (name: DeviceName): Promise<ProviderStatus> =>
  available[name] ? { name, available: true } : { name, available: false, reason: `no ${name} here` };

describe('resolveDevice', () => {
  const cases: [DeviceRequest, Partial<Record<DeviceName, boolean>>, DeviceName, string][] = [
    ['auto', { cuda: true, webgpu: true, cpu: true }, 'cuda', 'device: cuda (auto)'],
    ['auto', { webgpu: true, cpu: true }, 'webgpu', 'device: webgpu (auto; cuda unavailable: no cuda here)'],
    ['auto', { cpu: true }, 'cpu', 'device: cpu (auto; cuda unavailable: no cuda here; webgpu unavailable: no webgpu here)'],
    ['webgpu', { webgpu: true, cpu: true }, 'webgpu', 'device: webgpu (requested)'],
    ['webgpu', { cuda: true, cpu: true }, 'cpu', 'device: cpu (webgpu requested but unavailable: no webgpu here)'],
    ['cuda', { cpu: true }, 'cpu', 'device: cpu (cuda requested but unavailable: no cuda here)'],
    ['cpu', { cuda: true, cpu: true }, 'cpu', 'device: cpu (requested)'],
  ];
  for (const [request, available, chosen, line] of cases) {
    it(`${request} with ${Object.keys(available).join('+')} working -> ${chosen}, one line`, async () => {
      const lines: string[] = [];
      const device = await resolveDevice(request, { probe: statuses(available), log: (l) => lines.push(l) });
      expect(device).toEqual({ name: chosen, executionProviders: [chosen], line });
      expect(lines).toEqual([line]);
    });
  }

  it('takes the CPU silently when no device was asked for, and an already resolved one as it is', async () => {
    const lines: string[] = [];
    expect((await toResolvedDevice(undefined, (l) => lines.push(l))).name).toBe('cpu');
    const webgpu = await resolveDevice('webgpu', { probe: statuses({ webgpu: true }) });
    expect(await toResolvedDevice(webgpu, (l) => lines.push(l))).toBe(webgpu);
    expect(lines).toEqual([]);
  });

  it('fails only when the CPU itself does not work, and rejects unknown devices', async () => {
    await expect(resolveDevice('auto', { probe: statuses({}) })).rejects.toThrow(/cannot run on the CPU: no cpu here/);
    await expect(resolveDevice('tpu' as DeviceRequest)).rejects.toThrow(ConfigError);
  });
});

describe('providers of this machine', () => {
  it('runs a session on the CPU', async () => {
    expect(await probeProvider('cpu')).toEqual({ name: 'cpu', available: true });
  });

  it('reports every provider with a reason whenever it is unavailable', async () => {
    const all = await probeAllProviders();
    expect(all.map((s) => s.name)).toEqual(['cpu', 'webgpu', 'cuda']);
    for (const s of all) {
      if (s.available) expect(s.reason).toBeUndefined();
      else expect(s.reason).toMatch(/.{10,}/);
    }
  });

  it.runIf(!sharedLibraryFound('libvulkan.so.1'))('without a Vulkan loader, WebGPU is unavailable and says so', async () => {
    expect(await probeProvider('webgpu')).toEqual({ name: 'webgpu', available: false, reason: expect.stringMatching(/libvulkan\.so\.1 not found/) });
  });

  it.runIf(!cudaProviderLibrary())('without the CUDA provider library, CUDA is unavailable and says what to install', async () => {
    expect(await probeProvider('cuda')).toEqual({ name: 'cuda', available: false, reason: expect.stringMatching(/libonnxruntime_providers_cuda\.so\) is not installed.*CUDA 12/) });
  });

  it('a session the provider refuses is created on the CPU with one line', async () => {
    const model = buildOnnxModel({
      name: 'identity',
      inputs: [{ name: 'x', elemType: OnnxDataType.float, dims: [1] }],
      outputs: [{ name: 'y', elemType: OnnxDataType.float, dims: [1] }],
      nodes: [{ op: 'Identity', inputs: ['x'], outputs: ['y'] }],
    });
    const lines: string[] = [];
    const webgpu = await probeProvider('webgpu');
    // As if the probe had passed: the provider then fails on this machine when the session is created.
    const claimed = { name: 'webgpu' as const, executionProviders: ['webgpu'], line: '' };
    const { session, device } = await createSessionOn(model, {}, claimed, { what: 'test', log: (l) => lines.push(l) });
    expect(device).toBe(webgpu.available ? 'webgpu' : 'cpu');
    expect(lines).toEqual(webgpu.available ? [] : [expect.stringMatching(/^test: webgpu could not load the model \(.+\); falling back to cpu$/)]);
    await session.release();
  });
});

describe('conciseProviderError', () => {
  it('keeps the actionable part of onnxruntime provider errors', () => {
    const adapter = '/onnxruntime_src/onnxruntime/core/providers/webgpu/webgpu_context.cc:136 onnxruntime::webgpu::WebGpuContext::Initialize(const onnxruntime::webgpu::WebGpuContextConfig&)::<lambda()> adapter_result.status == wgpu::RequestAdapterStatus::Success was false. Failed to get a WebGPU adapter: No supported adapters\n';
    expect(conciseProviderError(new Error(adapter))).toBe('Failed to get a WebGPU adapter: No supported adapters');
    expect(conciseProviderError(new Error('/onnxruntime_src/onnxruntime/core/session/inference_session.cc:42 Something broke\nmore'))).toBe('Something broke');
    expect(conciseProviderError(new Error('OrtSessionOptionsAppendExecutionProvider_Cuda: Failed to load shared library'))).toBe('OrtSessionOptionsAppendExecutionProvider_Cuda: Failed to load shared library');
  });
});

describe('sharedLibraryFound', () => {
  it.runIf(process.platform === 'linux')('finds the C library, not a made-up one, and honours LD_LIBRARY_PATH', async () => {
    expect(sharedLibraryFound('libc.so.6')).toBe(true);
    expect(sharedLibraryFound('libfuss-not-a-library.so.7')).toBe(false);
    const dir = await mkdtemp(join(tmpdir(), 'fuss-lib-'));
    await writeFile(join(dir, 'libfuss-not-a-library.so.7'), '');
    expect(sharedLibraryFound('libfuss-not-a-library.so.7', { LD_LIBRARY_PATH: `/nowhere:${dir}` })).toBe(true);
    await rm(dir, { recursive: true });
  });
});
