// Picks the TensorFlow.js backend for the tfjs engine: the native TensorFlow bindings when installed
// (optional dependencies: their install downloads libtensorflow), else the wasm backend (DESIGN 7).

import * as tf from '@tensorflow/tfjs';
import { FussError } from '../../errors.js';

/** Native packages in order of preference; both register the backend named `tensorflow`. */
const NATIVE_PACKAGES = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'] as const;

/** The backend in use. */
export interface TfjsBackendChoice {
  /** tfjs backend name: `tensorflow` or `wasm`. */
  backend: string;
  /** One line for logs, e.g. "tfjs 4.22.0 (wasm backend, SIMD, 1 thread)". */
  description: string;
  /** `gpu` with tfjs-node-gpu (TensorFlow's CUDA build), else `cpu`. */
  device: 'cpu' | 'gpu';
}

/**
 * Makes the fastest installed backend the active tfjs backend: `@tensorflow/tfjs-node-gpu`, then
 * `@tensorflow/tfjs-node`, else `@tensorflow/tfjs-backend-wasm`. Logs one line per package skipped,
 * with the reason. Throws a {@link FussError} when not even the wasm backend starts.
 */
export async function selectTfjsBackend(log: (line: string) => void): Promise<TfjsBackendChoice> {
  for (let i = 0; i < NATIVE_PACKAGES.length; i++) {
    const pkg = NATIVE_PACKAGES[i];
    const next = i + 1 < NATIVE_PACKAGES.length ? `trying ${NATIVE_PACKAGES[i + 1]}` : 'using the wasm backend';
    try {
      // A variable specifier, so TypeScript needs no types for these optional packages.
      const specifier: string = pkg;
      await import(specifier); // registers the `tensorflow` backend
      if (await tf.setBackend('tensorflow')) {
        await tf.ready();
        log(`tfjs: using ${pkg}`);
        const device = pkg === '@tensorflow/tfjs-node-gpu' ? 'gpu' : 'cpu';
        return { backend: 'tensorflow', device, description: `tfjs ${tf.version.tfjs} (tensorflow backend from ${pkg})` };
      }
      log(`tfjs: ${pkg} loaded but its tensorflow backend did not start; ${next}`);
    } catch (err) {
      const reason = isMissingPackage(err, pkg) ? 'not installed' : `failed to load (${(err as Error).message})`;
      log(`tfjs: ${pkg} ${reason}; ${next}`);
    }
  }

  // In Node the wasm backend finds its .wasm files next to its own bundle
  // (node_modules/@tensorflow/tfjs-backend-wasm/dist), so no setWasmPaths is needed.
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  if (!(await tf.setBackend('wasm'))) {
    throw new FussError('tfjs: the wasm backend did not start', { status: 500, type: 'engine-unavailable' });
  }
  await tf.ready();
  const simd = tf.env().getBool('WASM_HAS_SIMD_SUPPORT') ? 'SIMD' : 'no SIMD';
  const threads = wasm.getThreadsCount();
  return {
    backend: 'wasm',
    device: 'cpu',
    description: `tfjs ${tf.version.tfjs} (wasm backend, ${simd}, ${threads} thread${threads === 1 ? '' : 's'})`,
  };
}

/** True when `err` says that `pkg` itself cannot be found (rather than failing while loading). */
function isMissingPackage(err: unknown, pkg: string): boolean {
  const message = err instanceof Error ? err.message : String(err);
  return message.includes(`Cannot find package '${pkg}'`) || message.includes(`Cannot find module '${pkg}'`);
}
