// A ViT-B/8-shaped encoder with random weights, as ONNX (the paper's backbone is DINO ViT-B/8, whose
// weights cannot be downloaded on these machines): patch embedding Conv(3 -> 768, 8x8, stride 8) on a
// 224 x 224 image, a CLS token, position embeddings, `layers` pre-norm transformer blocks (12 heads of
// 64, MLP 3072, exact GELU), a final LayerNorm; output `last_hidden_state` [1, 785, 768]. Its speed is
// that of the real network (same operators and shapes); its features mean nothing.

import { buildOnnxModel, createRng, OnnxDataType } from '@fuss/core';

const WIDTH = 768;
const HEADS = 12;
const MLP = 3072;
const PATCH = 8;
const SIZE = 224;
const TOKENS = (SIZE / PATCH) ** 2 + 1;

/** Matrix-product FLOPs of one forward pass (2 per multiply-add). */
export function vitFlops(layers) {
  const n = TOKENS;
  const perLayer = 2 * n * WIDTH * 3 * WIDTH + 2 * 2 * n * n * WIDTH + 2 * n * WIDTH * WIDTH + 2 * 2 * n * WIDTH * MLP;
  return layers * perLayer + 2 * (n - 1) * WIDTH * 3 * PATCH * PATCH;
}

export function buildVitEncoder(layers, seed = 8) {
  const rng = createRng(seed);
  const initializers = [];
  const nodes = [];
  let counter = 0;
  const weight = (dims, scale = 0.02) => {
    const name = `w${counter++}`;
    const size = dims.reduce((a, b) => a * b, 1);
    initializers.push({ name, dims, data: Float32Array.from({ length: size }, () => rng.normal() * scale) });
    return name;
  };
  const filled = (dims, value) => {
    const name = `c${counter++}`;
    initializers.push({ name, dims, data: new Float32Array(dims.reduce((a, b) => a * b, 1)).fill(value) });
    return name;
  };
  const ints = (values, dims = [values.length]) => {
    const name = `i${counter++}`;
    initializers.push({ name, dims, data: { int64: values } });
    return name;
  };
  const op = (type, inputs, attributes, floatAttributes) => {
    const out = `v${counter++}`;
    nodes.push({ op: type, inputs, outputs: [out], attributes, floatAttributes });
    return out;
  };
  const linear = (x, inputs, outputs) => op('Add', [op('MatMul', [x, weight([inputs, outputs])]), weight([outputs], 0)]);
  const layerNorm = (x) => op('LayerNormalization', [x, filled([WIDTH], 1), filled([WIDTH], 0)], { axis: -1 }, { epsilon: 1e-6 });

  const patches = op('Conv', ['pixel_values', weight([WIDTH, 3, PATCH, PATCH]), weight([WIDTH], 0)], { kernel_shape: [PATCH, PATCH], strides: [PATCH, PATCH] });
  const flat = op('Transpose', [op('Reshape', [patches, ints([1, WIDTH, TOKENS - 1])])], { perm: [0, 2, 1] });
  let h = op('Add', [op('Concat', [weight([1, 1, WIDTH]), flat], { axis: 1 }), weight([1, TOKENS, WIDTH])]);
  const headDim = WIDTH / HEADS;
  for (let l = 0; l < layers; l++) {
    const qkv = op('Transpose', [op('Reshape', [linear(layerNorm(h), WIDTH, 3 * WIDTH), ints([1, TOKENS, 3, HEADS, headDim])])], { perm: [2, 0, 3, 1, 4] });
    const [q, k, v] = [0, 1, 2].map((i) => op('Gather', [qkv, ints([i], [])], { axis: 0 })); // [1, heads, tokens, 64]
    const scores = op('Mul', [op('MatMul', [q, op('Transpose', [k], { perm: [0, 1, 3, 2] })]), filled([], 1 / Math.sqrt(headDim))]);
    const attended = op('MatMul', [op('Softmax', [scores], { axis: -1 }), v]);
    const merged = op('Reshape', [op('Transpose', [attended], { perm: [0, 2, 1, 3] }), ints([1, TOKENS, WIDTH])]);
    h = op('Add', [h, linear(merged, WIDTH, WIDTH)]);
    const hidden = linear(layerNorm(h), WIDTH, MLP);
    const gelu = op('Mul', [op('Mul', [hidden, filled([], 0.5)]), op('Add', [filled([], 1), op('Erf', [op('Mul', [hidden, filled([], Math.SQRT1_2)])])])]);
    h = op('Add', [h, linear(gelu, MLP, WIDTH)]);
  }
  nodes.push({ op: 'LayerNormalization', inputs: [h, filled([WIDTH], 1), filled([WIDTH], 0)], outputs: ['last_hidden_state'], attributes: { axis: -1 }, floatAttributes: { epsilon: 1e-6 } });
  return buildOnnxModel({
    name: `vit-b8-synthetic-${layers}`,
    inputs: [{ name: 'pixel_values', elemType: OnnxDataType.float, dims: [1, 3, SIZE, SIZE] }],
    outputs: [{ name: 'last_hidden_state', elemType: OnnxDataType.float, dims: [1, TOKENS, WIDTH] }],
    initializers,
    nodes,
  });
}
