// The model worker thread (model-worker.ts): computes round and initial models, asking the main
// thread for each update's bytes as it goes.

import { parentPort } from 'node:worker_threads';
import { FussError } from '@fuss/core';
import { computeInitialModel, computeRoundModel } from './round-model.js';
import type { FromWorker, ToWorker } from './model-worker.js';

const port = parentPort!;
const waiting = new Map<string, { resolve: (bytes: Uint8Array) => void; reject: (err: Error) => void }>();

function load(id: number, index: number): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    waiting.set(`${id}:${index}`, { resolve, reject });
    port.postMessage({ kind: 'load', id, index } satisfies FromWorker);
  });
}

function reply(message: FromWorker) {
  const transfer = message.kind === 'done' ? [message.bytes.buffer as ArrayBuffer, ...(message.serverState ? [message.serverState.bytes.buffer as ArrayBuffer] : [])] : [];
  port.postMessage(message, transfer);
}

port.on('message', (message: ToWorker) => {
  if (message.kind === 'bytes') {
    const key = `${message.id}:${message.index}`;
    const waiter = waiting.get(key);
    waiting.delete(key);
    if (message.bytes) waiter?.resolve(message.bytes);
    else waiter?.reject(new Error(message.error ?? 'no bytes'));
    return;
  }
  let work: Promise<{ bytes: Uint8Array; sha256: string; metrics?: Record<string, unknown>; serverState?: { bytes: Uint8Array; sha256: string } }>;
  if (message.kind === 'round') work = computeRoundModel(message.spec, message.previous, (index) => load(message.id, index), message.previousState);
  else work = Promise.resolve(computeInitialModel(message.shape, message.seed));
  work.then(
    (model) => {
      // Transferable: a buffer of its own (a copy only when the view shares a larger buffer).
      const own = (view: Uint8Array) => (view.byteOffset === 0 && view.byteLength === view.buffer.byteLength ? view : new Uint8Array(view));
      const serverState = model.serverState ? { bytes: own(model.serverState.bytes), sha256: model.serverState.sha256 } : undefined;
      reply({ kind: 'done', id: message.id, bytes: own(model.bytes), sha256: model.sha256, metrics: model.metrics, ...(serverState ? { serverState } : {}) });
    },
    (err: unknown) => reply({ kind: 'failed', id: message.id, message: String((err as Error)?.message ?? err), status: err instanceof FussError ? err.status : undefined, type: err instanceof FussError ? err.type : undefined }),
  );
});
