// Ending a worker thread that runs onnxruntime (the /segment workers, the validation worker). Such a
// thread is never terminated from outside: terminating it while onnxruntime-node runs in it aborts the
// whole process (the binding throws a C++ exception it cannot deliver: "terminate called after throwing
// an instance of 'Napi::Error'"). It is asked to stop and ends itself between jobs.

import type { Worker } from 'node:worker_threads';

/** Sends `{ kind: 'stop' }` and resolves when the thread has exited (an 'error' on the way does not reject). */
export function stopWorker(worker: Worker): Promise<void> {
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  worker.postMessage({ kind: 'stop' });
  return exited;
}
