// A small fluent layer over buildOnnxModel for writing computation graphs by hand: each call adds one
// node and returns the name of its output, so a graph reads like the maths it computes.

import { buildOnnxModel, OnnxDataType, type OnnxInitializer, type OnnxNode, type OnnxValueInfo } from './model-builder.js';

export class GraphBuilder {
  private readonly nodes: OnnxNode[] = [];
  private readonly initializers: OnnxInitializer[] = [];
  private readonly inputs: OnnxValueInfo[] = [];
  private readonly outputs: OnnxValueInfo[] = [];
  private counter = 0;

  constructor(private readonly name: string) {}

  /** Declares a float32 graph input. */
  input(name: string, dims: (number | string)[], elemType: number = OnnxDataType.float): string {
    this.inputs.push({ name, elemType, dims });
    return name;
  }

  /** Marks a value as a float32 graph output under `name` (adds an Identity when renaming). */
  output(value: string, name: string, dims: (number | string)[], elemType: number = OnnxDataType.float): void {
    if (value !== name) this.nodes.push({ op: 'Identity', inputs: [value], outputs: [name] });
    this.outputs.push({ name, elemType, dims });
  }

  /** A float32 constant (scalar when dims is []). */
  constant(values: number[] | Float32Array, dims: number[] = []): string {
    const name = `const_${this.counter++}`;
    this.initializers.push({ name, dims, data: values instanceof Float32Array ? values : new Float32Array(values) });
    return name;
  }

  /** An int64 constant (shapes, axes, indices). */
  ints(values: number[]): string {
    const name = `ints_${this.counter++}`;
    this.initializers.push({ name, dims: [values.length], data: { int64: values } });
    return name;
  }

  /** Adds a node with one output and returns the output's name. */
  op(op: string, inputs: string[], attributes?: OnnxNode['attributes'], floatAttributes?: OnnxNode['floatAttributes']): string {
    const out = `${op.toLowerCase()}_${this.counter++}`;
    this.nodes.push({ op, inputs, outputs: [out], attributes, floatAttributes });
    return out;
  }

  // Shorthands for the operators used by the training graphs.
  add = (a: string, b: string) => this.op('Add', [a, b]);
  sub = (a: string, b: string) => this.op('Sub', [a, b]);
  mul = (a: string, b: string) => this.op('Mul', [a, b]);
  div = (a: string, b: string) => this.op('Div', [a, b]);
  neg = (a: string) => this.op('Neg', [a]);
  relu = (a: string) => this.op('Relu', [a]);
  sqrt = (a: string) => this.op('Sqrt', [a]);
  exp = (a: string) => this.op('Exp', [a]);
  log = (a: string) => this.op('Log', [a]);
  abs = (a: string) => this.op('Abs', [a]);
  /** max(a, low) elementwise, low a scalar (Clip rather than Max: onnxruntime's WebGPU provider has no Max kernel). */
  atLeast = (a: string, low: string) => this.op('Clip', [a, low]);
  matmul = (a: string, b: string) => this.op('MatMul', [a, b]);
  transpose = (a: string, perm: number[]) => this.op('Transpose', [a], { perm });
  reshape = (a: string, shape: number[]) => this.op('Reshape', [a, this.ints(shape)]);
  /** Y = A B^T + bias, B given as [out, in]. */
  linear = (a: string, weight: string, bias: string) => this.op('Gemm', [a, weight, bias], { transB: 1 });
  reduceSum = (a: string, axes: number[], keepdims = true) => this.op('ReduceSum', [a, this.ints(axes)], { keepdims: keepdims ? 1 : 0 });
  reduceMean = (a: string, axes: number[], keepdims = true) => this.op('ReduceMean', [a], { axes, keepdims: keepdims ? 1 : 0 });
  reduceMax = (a: string, axes: number[], keepdims = true) => this.op('ReduceMax', [a], { axes, keepdims: keepdims ? 1 : 0 });
  /** 1.0 where a > b, else 0.0. */
  greaterMask = (a: string, b: string) => this.op('Cast', [this.op('Greater', [a, b])], { to: OnnxDataType.float });
  /** 1.0 where a == b, else 0.0. */
  equalMask = (a: string, b: string) => this.op('Cast', [this.op('Equal', [a, b])], { to: OnnxDataType.float });
  toFloat = (a: string) => this.op('Cast', [a], { to: OnnxDataType.float });
  sliceRows = (a: string, start: number, end: number) => this.op('Slice', [a, this.ints([start]), this.ints([end]), this.ints([0])]);
  concatRows = (parts: string[]) => this.op('Concat', parts, { axis: 0 });

  build(): Uint8Array {
    return buildOnnxModel({
      name: this.name,
      inputs: this.inputs,
      outputs: this.outputs,
      nodes: this.nodes,
      initializers: this.initializers,
      opset: 17,
    });
  }
}
