// `fuss doctor`: the report a user pastes into a bug report. On a CPU-only machine (as CI) the CPU
// provider works, and WebGPU and CUDA are reported unavailable with the reason.

import { describe, expect, it } from 'vitest';
import { resolve } from 'node:path';
import { main } from './index.js';
import type { CliIo } from './io.js';
import type { DoctorReport } from './commands/doctor.js';
import { cudaProviderLibrary, sharedLibraryFound } from '../../services/core/src/device/native-libraries.js';

function fakeIo(env: NodeJS.ProcessEnv = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const io: CliIo = { stdout: (t) => out.push(t), stderr: (t) => err.push(t), interactive: false, colour: false, env, cwd: process.cwd() };
  return { io, stdout: () => out.join(''), stderr: () => err.join('') };
}

async function doctor(env: NodeJS.ProcessEnv): Promise<DoctorReport> {
  const r = fakeIo(env);
  expect(await main(['doctor', '--json'], r.io), r.stderr()).toBe(0);
  return JSON.parse(r.stdout());
}

describe('fuss doctor', () => {
  it('reports each execution provider, with the reason when it is unavailable', async () => {
    const report = await doctor({ CHROMIUM_PATH: '/nonexistent/chromium' });
    expect(report.node).toBe(process.version);
    expect(report.packages['onnxruntime-node']).toMatch(/^\d+\.\d+\.\d+/);
    expect(report.providers.map((p) => p.name)).toEqual(['cpu', 'webgpu', 'cuda']);
    expect(report.providers[0]).toEqual({ name: 'cpu', available: true });
    for (const p of report.providers) if (!p.available) expect(p.reason).toMatch(/.{10,}/);
    if (!sharedLibraryFound('libvulkan.so.1')) expect(report.providers[1]).toEqual({ name: 'webgpu', available: false, reason: expect.stringMatching(/Vulkan loader/) });
    if (!cudaProviderLibrary()) expect(report.providers[2]).toEqual({ name: 'cuda', available: false, reason: expect.stringMatching(/CUDA provider library/) });
    expect(report.tfjs.find((t) => t.name === 'wasm')).toMatchObject({ available: true });
    expect(report.sharp).toMatchObject({ available: true, detail: expect.stringMatching(/libvips/) });
    expect(report.chromium).toEqual({ name: 'chromium', available: false, reason: expect.stringMatching(/\/nonexistent\/chromium not found/) });
    expect(report.database).toMatchObject({ kind: 'pglite', available: true, detail: expect.stringContaining(resolve('.fuss/db')) });
  });

  it('names the Postgres server of DATABASE_URL without its password, and prints a readable report', async () => {
    const report = await doctor({ DATABASE_URL: 'postgresql://fuss:s3cret@db.example:5432/fuss' });
    expect(report.database).toMatchObject({ kind: 'postgres', available: true, detail: 'Postgres at postgresql://fuss@db.example:5432/fuss (DATABASE_URL)' });
    expect(JSON.stringify(report)).not.toMatch(/s3cret/);
    const text = fakeIo({ FUSS_DB_DIR: 'elsewhere/db' });
    expect(await main(['doctor'], text.io)).toBe(0);
    expect(text.stdout()).toMatch(/onnxruntime execution providers \(--device\)\n {2}cpu +yes\n {2}webgpu +(yes|no {3}\S.*)\n {2}cuda +(yes|no {3}\S.*)\n/);
    expect(text.stdout()).toMatch(/database +yes +embedded PGlite in .*elsewhere\/db/);
  });
});
