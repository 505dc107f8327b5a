// Every training graph keeps to the operators onnxruntime's WebGPU provider implements, so that no node
// of a step falls back to the CPU there (each fallback costs two copies and a sync per step).

import { describe, expect, it } from 'vitest';
import onnxProto from 'onnx-proto';
import { buildCodesGraph, buildStepGraph, type StepGraphDims } from './step-graph.js';
import { WEBGPU_OPERATORS, WEBGPU_REWRITES } from './webgpu-operators.js';

function operatorsOf(model: Uint8Array): Set<string> {
  const decoded = onnxProto.onnx.ModelProto.decode(model);
  return new Set(decoded.graph!.node!.map((n) => n.opType!));
}

const dims: StepGraphDims = { images: 6, cells: 9, channels: 8, codeDim: 4, k: 3, pairs: 9, queries: 3 };

describe('training graphs on WebGPU', () => {
  const graphs: [string, Uint8Array][] = [
    ['step', buildStepGraph(dims)],
    ['step, one centroid, queries only', buildStepGraph({ ...dims, k: 1, images: 3 })],
    ['step with MOON on the nonlinear branch', buildStepGraph(dims, { moon: 'nonlinear' })],
    ['step with MOON on the whole head', buildStepGraph(dims, { moon: 'head' })],
    ['codes', buildCodesGraph(8, 4)],
  ];
  for (const [label, model] of graphs) {
    it(`${label} uses only operators with WebGPU kernels`, () => {
      const missing = [...operatorsOf(model)].filter((op) => !WEBGPU_OPERATORS.has(op));
      expect(missing).toEqual([]);
    });
  }

  it('lists no rewritten operator as supported', () => {
    for (const op of Object.keys(WEBGPU_REWRITES)) expect(WEBGPU_OPERATORS.has(op)).toBe(false);
  });
});
