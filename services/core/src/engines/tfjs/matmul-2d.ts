// 2-D matrix products whose gradients are themselves flag-free 2-D products.
//
// The wasm backend runs a product on XNNPACK only when it is 2-D with no transpose flag; anything
// else falls to a scalar loop about 15x slower. tfjs's own BatchMatMul gradient uses transpose flags
// (dA = matMul(dY, B, false, true), dB = matMul(A, dY, true, false)), so autodiff through tf.matMul
// would put every backward product on the slow path. These helpers keep autodiff for the whole loss
// and only restate the textbook derivative of one product, dA = dY B^T and dB = A^T dY, with explicit
// transposes. The tfjs engine test checks them against tf.matMul's gradient.

import * as tf from '@tensorflow/tfjs';

/** `a` [m, k] times `b` [k, n] -> [m, n]; both operands receive gradients. */
export function matMul2d(a: tf.Tensor2D, b: tf.Tensor2D): tf.Tensor2D {
  const product = tf.customGrad((x, y, save) => {
    const [lhs, rhs] = [x as tf.Tensor2D, y as tf.Tensor2D];
    (save as tf.GradSaveFunc)([lhs, rhs]);
    return {
      value: tf.matMul(lhs, rhs),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [savedA, savedB] = saved as tf.Tensor2D[];
        const dy2 = dy as tf.Tensor2D;
        return [tf.matMul(dy2, tf.transpose(savedB)), tf.matMul(tf.transpose(savedA), dy2)];
      },
    };
  });
  return product(a, b) as tf.Tensor2D;
}

/**
 * `a` [m, k] times `b` [k, n] -> [m, n] where `a` is a constant (features): only `b` receives a
 * gradient, which saves the dY B^T product, the largest of the backward pass for the head's input
 * layers.
 */
export function matMulConstantLeft(a: tf.Tensor2D, b: tf.Tensor2D): tf.Tensor2D {
  const product = tf.customGrad((y, save) => {
    const rhs = y as tf.Tensor2D;
    (save as tf.GradSaveFunc)([a]);
    return {
      value: tf.matMul(a, rhs),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.matMul(tf.transpose(saved[0] as tf.Tensor2D), dy as tf.Tensor2D),
    };
  });
  return product(b) as tf.Tensor2D;
}
