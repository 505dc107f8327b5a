// The tensor value passed between FUSS modules: a dtype tag, a typed array and its dims (row-major),
// as in onnxruntime-common's Tensor. Shapes are documented at each function in TSDoc, e.g. [N, D].

import { NonFiniteError, ShapeError } from './errors.js';

export interface DataTypeMap {
  float32: Float32Array;
  int32: Int32Array;
  uint8: Uint8Array;
}
export type DataType = keyof DataTypeMap;

export interface Tensor<T extends DataType = DataType> {
  readonly dtype: T;
  readonly data: DataTypeMap[T];
  readonly dims: readonly number[];
}

export type Float32Tensor = Tensor<'float32'>;

/** Number of elements of a shape. */
export function sizeOf(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) n *= d;
  return n;
}

/** Builds a float32 tensor, checking that data length matches dims. */
export function float32Tensor(data: Float32Array, dims: readonly number[]): Float32Tensor {
  if (data.length !== sizeOf(dims)) {
    throw new ShapeError(`tensor data has ${data.length} values but dims [${dims.join(', ')}] need ${sizeOf(dims)}`);
  }
  return { dtype: 'float32', data, dims: [...dims] };
}

/** Throws NonFiniteError naming the first NaN or infinite value. */
export function assertFinite(data: ArrayLike<number>, what: string): void {
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i])) throw new NonFiniteError(`${what} holds a non-finite value (${data[i]}) at index ${i}`);
  }
}
