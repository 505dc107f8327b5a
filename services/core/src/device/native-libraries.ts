// Where onnxruntime's execution providers would find their native libraries, checked before a provider
// is asked for: onnxruntime prints its own error lines when a library is missing, and a missing library
// is a clearer reason to report than the error that follows it.

import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

/** Folders the dynamic loader searches besides LD_LIBRARY_PATH on Debian-like and other Linux systems. */
function standardLibraryFolders(): string[] {
  const triplet = process.arch === 'arm64' ? 'aarch64-linux-gnu' : 'x86_64-linux-gnu';
  return [`/lib/${triplet}`, `/usr/lib/${triplet}`, '/lib64', '/usr/lib64', '/lib', '/usr/lib', '/usr/local/lib'];
}

/**
 * Whether the dynamic loader can find a shared library by file name (e.g. `libvulkan.so.1`): in
 * LD_LIBRARY_PATH, in the loader's cache (/etc/ld.so.cache lists every library `ldconfig` knows, as
 * NUL-terminated names) or in the standard folders. Linux only; elsewhere it answers true (unknown).
 */
export function sharedLibraryFound(fileName: string, env: NodeJS.ProcessEnv = process.env): boolean {
  if (process.platform !== 'linux') return true;
  const folders = [...(env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean), ...standardLibraryFolders()];
  if (folders.some((folder) => existsSync(join(folder, fileName)))) return true;
  try {
    return readFileSync('/etc/ld.so.cache').includes(Buffer.from(`${fileName}\0`));
  } catch {
    return false;
  }
}

/** The folder holding onnxruntime-node's native binding, where its install script puts provider libraries. */
export function onnxruntimeBinaryFolder(): string | undefined {
  try {
    const main = createRequire(import.meta.url).resolve('onnxruntime-node');
    return join(dirname(main), '..', 'bin', 'napi-v6', process.platform, process.arch);
  } catch {
    return undefined;
  }
}

/** Path of onnxruntime's CUDA provider library next to the binding, or undefined when it is not there. */
export function cudaProviderLibrary(): string | undefined {
  const folder = onnxruntimeBinaryFolder();
  const name = process.platform === 'win32' ? 'onnxruntime_providers_cuda.dll' : 'libonnxruntime_providers_cuda.so';
  if (!folder) return undefined;
  const path = join(folder, name);
  return existsSync(path) ? path : undefined;
}
