// The parity suite on every execution provider: the onnx engine's loss and each gradient within 1e-3 of
// the float64 reference (central differences of reference-loss.ts). The CPU always runs; WebGPU and CUDA
// run where they work and are skipped with the reason where they do not.

import { afterAll, describe, expect, it } from 'vitest';
import { createOnnxEngine } from './onnx-engine.js';
import { DEVICE_NAMES, probeProvider, resolveDevice } from '../../device/execution-device.js';
import { measureParity, PARITY_CASES, PARITY_RTOL } from '../test-support/provider-parity.js';
import type { TrainingEngine } from '../engine.js';

const engines: TrainingEngine[] = [];
afterAll(() => Promise.all(engines.map((e) => e.dispose())));

for (const provider of DEVICE_NAMES) {
  const status = await probeProvider(provider);
  const title = status.available ? `onnx engine on ${provider}` : `onnx engine on ${provider} (skipped: ${status.reason})`;
  describe.skipIf(!status.available)(title, () => {
    for (const { label, options } of PARITY_CASES) {
      it(`${label}: loss and every gradient within ${PARITY_RTOL} of float64`, async () => {
        const engine = await createOnnxEngine({ threads: 1, device: await resolveDevice(provider) });
        engines.push(engine);
        expect(engine.device).toBe(provider);
        const report = await measureParity(engine, label, options);
        expect(report.checked).toBeGreaterThan(50);
        expect(report.skipped).toBeLessThan(report.checked / 20);
        expect(report.clusterCountsEqual).toBe(true);
        expect(report.lossError).toBeLessThan(PARITY_RTOL);
        for (const [name, error] of Object.entries(report.gradErrors)) expect(error, name).toBeLessThan(PARITY_RTOL);
      });
    }
  });
}
