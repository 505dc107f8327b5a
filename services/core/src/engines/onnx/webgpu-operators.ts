// The ONNX operators that onnxruntime's WebGPU execution provider has kernels for, of those the training
// graphs could use. Read from onnxruntime's source (onnxruntime/core/providers/webgpu: the kernel table
// in webgpu_execution_provider.cc and the registrations in math/, nn/, tensor/ and reduction/), opset 17.
// A node whose operator is missing here runs on the CPU, with a copy each way and a sync per step.
// The step graph keeps to this list (step-graph.test.ts); bench/gpu/run.sh checks the placement itself
// with onnxruntime's profiler on a GPU.

export const WEBGPU_OPERATORS: ReadonlySet<string> = new Set([
  // element-wise (math/binary_elementwise_ops.cc, math/unary_elementwise_ops.cc)
  'Add', 'Sub', 'Mul', 'Div', 'Pow', 'Equal', 'Greater', 'Less', 'GreaterOrEqual', 'LessOrEqual',
  'Abs', 'Neg', 'Sqrt', 'Exp', 'Log', 'Reciprocal', 'Sigmoid', 'Tanh', 'Relu', 'Clip', 'Erf', 'Where',
  // matrix products (math/gemm.cc, math/matmul.cc)
  'Gemm', 'MatMul',
  // reductions (reduction/reduction_ops.cc)
  'ReduceSum', 'ReduceMean', 'ReduceMax', 'ReduceMin', 'ReduceSumSquare', 'ArgMax', 'ArgMin',
  // data movement (tensor/)
  'Cast', 'Reshape', 'Transpose', 'Gather', 'Slice', 'Concat', 'Squeeze', 'Unsqueeze', 'Expand', 'Identity',
]);

/**
 * Operators with no WebGPU kernel that the step graph once used, and what replaced them (the CPU
 * results are unchanged: the parity and finite-difference suites hold the rewritten graph to them).
 */
export const WEBGPU_REWRITES: Readonly<Record<string, string>> = {
  Max: 'Clip with a lower bound: max(|v|, eps)',
  OneHot: 'Cast(Equal(ArgMax, [0..K-1])): the one-hot of the first maximum',
  Softplus: 'relu(x) + log(1 + exp(-|x|)) (Softplus is absent from the WebGPU kernel table of some releases)',
};
