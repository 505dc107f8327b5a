// Tiny ONNX backbones built by the tests themselves (no ../shared needed): a CNN with two feature
// maps at strides 2 and 4, and a ViT-shaped model that emits [1, 1 + h*w, C] tokens.

import { buildOnnxModel, OnnxDataType } from '../onnx/model-builder.js';
import { createRng } from '../math/rng.js';

function randomWeights(n: number, seed: number, scale = 0.5): Float32Array {
  const rng = createRng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.normal() * scale;
  return out;
}

/**
 * CNN: input [1,3,H,W] -> Conv(3->8, k2 s2) -> Relu = `feat_s2` [1,8,H/2,W/2]
 *   -> Conv(8->12, k2 s2) -> Relu = `feat_s4` [1,12,H/4,W/4]. Dynamic H and W.
 */
export function buildTinyCnn(seed = 1): Uint8Array {
  return buildOnnxModel({
    name: 'tiny-cnn',
    inputs: [{ name: 'input', elemType: OnnxDataType.float, dims: [1, 3, 'H', 'W'] }],
    outputs: [
      { name: 'feat_s2', elemType: OnnxDataType.float, dims: [1, 8, 'h2', 'w2'] },
      { name: 'feat_s4', elemType: OnnxDataType.float, dims: [1, 12, 'h4', 'w4'] },
    ],
    initializers: [
      { name: 'w1', dims: [8, 3, 2, 2], data: randomWeights(8 * 3 * 4, seed) },
      { name: 'b1', dims: [8], data: randomWeights(8, seed + 1, 0.1) },
      { name: 'w2', dims: [12, 8, 2, 2], data: randomWeights(12 * 8 * 4, seed + 2) },
      { name: 'b2', dims: [12], data: randomWeights(12, seed + 3, 0.1) },
    ],
    nodes: [
      { op: 'Conv', inputs: ['input', 'w1', 'b1'], outputs: ['c1'], attributes: { kernel_shape: [2, 2], strides: [2, 2] } },
      { op: 'Relu', inputs: ['c1'], outputs: ['feat_s2'] },
      { op: 'Conv', inputs: ['feat_s2', 'w2', 'b2'], outputs: ['c2'], attributes: { kernel_shape: [2, 2], strides: [2, 2] } },
      { op: 'Relu', inputs: ['c2'], outputs: ['feat_s4'] },
    ],
  });
}

/**
 * ViT-shaped: input [1,3,H,W] -> patch embedding Conv(3->16, k4 s4) -> [1,16,h,w] -> tokens
 * [1,h*w,16] -> prepend a CLS token -> `last_hidden_state` [1, 1 + h*w, 16]. Patch size 4.
 */
export function buildTinyVit(seed = 2): Uint8Array {
  const channels = 16;
  return buildOnnxModel({
    name: 'tiny-vit',
    inputs: [{ name: 'pixel_values', elemType: OnnxDataType.float, dims: [1, 3, 'H', 'W'] }],
    outputs: [{ name: 'last_hidden_state', elemType: OnnxDataType.float, dims: [1, 'tokens', channels] }],
    initializers: [
      { name: 'wp', dims: [channels, 3, 4, 4], data: randomWeights(channels * 3 * 16, seed, 0.3) },
      { name: 'bp', dims: [channels], data: randomWeights(channels, seed + 1, 0.1) },
      { name: 'cls', dims: [1, 1, channels], data: randomWeights(channels, seed + 2) },
      { name: 'flat_shape', dims: [3], data: { int64: [0, 0, -1] } },
    ],
    nodes: [
      { op: 'Conv', inputs: ['pixel_values', 'wp', 'bp'], outputs: ['patches'], attributes: { kernel_shape: [4, 4], strides: [4, 4] } },
      { op: 'Reshape', inputs: ['patches', 'flat_shape'], outputs: ['flat'] },
      { op: 'Transpose', inputs: ['flat'], outputs: ['tokens'], attributes: { perm: [0, 2, 1] } },
      { op: 'Concat', inputs: ['cls', 'tokens'], outputs: ['last_hidden_state'], attributes: { axis: 1 } },
    ],
  });
}
