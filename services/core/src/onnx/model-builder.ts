// Builds small ONNX models from TypeScript (used for test backbones and, later, training graphs).
// A thin, explicit layer over onnx-proto's generated protobuf classes.

import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;

/** ONNX TensorProto.DataType codes used here. */
export const OnnxDataType = { float: 1, uint8: 2, int32: 6, int64: 7, float16: 10 } as const;

export interface OnnxNode {
  op: string;
  inputs: string[];
  outputs: string[];
  name?: string;
  attributes?: Record<string, number | number[] | string>;
  /** Attributes that are float lists or floats even when integral (e.g. alpha = 1). */
  floatAttributes?: Record<string, number | number[]>;
}

export interface OnnxValueInfo {
  name: string;
  /** Element type code from OnnxDataType. */
  elemType: number;
  /** Dimensions: numbers for fixed, strings for symbolic. */
  dims: (number | string)[];
}

export interface OnnxInitializer {
  name: string;
  dims: number[];
  /** float32 or int64 (given as numbers) data. */
  data: Float32Array | { int64: number[] };
}

export interface OnnxGraphSpec {
  name: string;
  inputs: OnnxValueInfo[];
  outputs: OnnxValueInfo[];
  nodes: OnnxNode[];
  initializers?: OnnxInitializer[];
  opset?: number;
}

function attribute(name: string, value: number | number[] | string, forceFloat: boolean) {
  const A = onnx.AttributeProto.AttributeType;
  if (typeof value === 'string') return { name, type: A.STRING, s: new TextEncoder().encode(value) };
  if (Array.isArray(value)) {
    return forceFloat ? { name, type: A.FLOATS, floats: value } : { name, type: A.INTS, ints: value };
  }
  if (forceFloat || !Number.isInteger(value)) return { name, type: A.FLOAT, f: value };
  return { name, type: A.INT, i: value };
}

function valueInfo(v: OnnxValueInfo) {
  return {
    name: v.name,
    type: {
      tensorType: {
        elemType: v.elemType,
        shape: { dim: v.dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

function initializer(init: OnnxInitializer) {
  if (init.data instanceof Float32Array) {
    const bytes = new Uint8Array(init.data.buffer, init.data.byteOffset, init.data.byteLength);
    return { name: init.name, dims: init.dims, dataType: OnnxDataType.float, rawData: bytes.slice() };
  }
  return { name: init.name, dims: init.dims, dataType: OnnxDataType.int64, int64Data: init.data.int64 };
}

/** Serialises a graph into the bytes of an ONNX ModelProto (IR version 8, default opset 17). */
export function buildOnnxModel(spec: OnnxGraphSpec): Uint8Array {
  const model = onnx.ModelProto.create({
    irVersion: 8,
    producerName: 'fuss',
    opsetImport: [{ domain: '', version: spec.opset ?? 17 }],
    graph: {
      name: spec.name,
      input: spec.inputs.map(valueInfo),
      output: spec.outputs.map(valueInfo),
      initializer: (spec.initializers ?? []).map(initializer),
      node: spec.nodes.map((n, i) => ({
        opType: n.op,
        name: n.name ?? `${n.op}_${i}`,
        input: n.inputs,
        output: n.outputs,
        attribute: [
          ...Object.entries(n.attributes ?? {}).map(([k, v]) => attribute(k, v, false)),
          ...Object.entries(n.floatAttributes ?? {}).map(([k, v]) => attribute(k, v, true)),
        ],
      })),
    },
  });
  return onnx.ModelProto.encode(model).finish();
}
