// The server-side validation worker thread (fuss server --eval-data DIR): holds the labelled
// dataset, one backbone session and one head engine, and evaluates the global models it is sent,
// one at a time, exactly as `fuss evaluate --model` does (features cached on disk, Hungarian
// matching, mIoU and pixel accuracy in percent). Nothing here runs on the server's event loop.

import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { parentPort, workerData } from 'node:worker_threads';
import { Backbone, createEngine, decodeModel, evaluateCentroids, featureConfigKey, FussError, headCodeFunction, openDataset, readLabelMap, requireLabels } from '@fuss/core';
import type { EvaluationReply, EvaluationRequest, EvaluationWorkerData } from './validator.js';

const config = workerData as EvaluationWorkerData;
const port = parentPort!;
const log = (line: string) => port.postMessage({ kind: 'log', line } satisfies EvaluationReply);

try {
  const dataset = await openDataset(config.datasetDir);
  requireLabels(dataset);
  if (dataset.items.length === 0) throw new FussError(`the evaluation dataset ${config.datasetDir} holds no images`);
  // A label that cannot be read fails the start, not every evaluation later.
  await readLabelMap(dataset.items[0], dataset.info);
  // The dataset's identity: its description and every file's name and size (results are kept per key).
  const hash = createHash('sha256').update(JSON.stringify(dataset.info));
  for (const item of dataset.items) hash.update(`${item.id}:${(await stat(item.imagePath)).size}:${(await stat(item.labelPath!)).size}\n`);
  const backbone = await Backbone.open(config.backbonePath, { threads: config.threads, device: config.device, log });
  const engine = await createEngine('onnx', { threads: config.threads, device: config.device, log });
  port.postMessage({
    kind: 'ready',
    dataset: { name: dataset.info.name, images: dataset.items.length, key: hash.digest('hex').slice(0, 16) },
    backbone: { sha256: backbone.descriptor.sha256, featureKey: featureConfigKey(backbone.descriptor) },
  } satisfies EvaluationReply);

  // The latest evaluation (the validator sends one at a time); 'stop' aborts it at its next image, then
  // the thread ends itself.
  let latest: { done: Promise<unknown>; abort: AbortController } = { done: Promise.resolve(), abort: new AbortController() };
  port.on('message', (request: EvaluationRequest) => {
    if (request.kind === 'stop') {
      latest.abort.abort();
      void latest.done.finally(async () => {
        await backbone.close();
        await engine.dispose();
        process.exit(0);
      });
      return;
    }
    const started = performance.now();
    const abort = new AbortController();
    const done = (async () => {
      const model = decodeModel(request.bytes, { backboneSha256: backbone.descriptor.sha256, featureKey: featureConfigKey(backbone.descriptor) }, 'global model');
      const codes = headCodeFunction(engine, model.head, model.channels, model.codeDim);
      return evaluateCentroids(dataset, backbone, model.centroids, model.k, { codes, cacheDir: config.cacheDir, signal: abort.signal });
    })().then(
      (metrics) => port.postMessage({
        kind: 'done', id: request.id,
        result: { mIoU: metrics.mIoU, pixelAccuracy: metrics.pixelAccuracy, perClassIoU: metrics.perClassIoU, images: metrics.images, seconds: (performance.now() - started) / 1000 },
      } satisfies EvaluationReply),
      (err: unknown) => {
        // Stopped, not failed: nothing is recorded, so the model is evaluated again after a restart.
        if (abort.signal.aborted) return;
        port.postMessage({ kind: 'failed', id: request.id, message: String((err as Error)?.message ?? err).slice(0, 2000) } satisfies EvaluationReply);
      },
    );
    latest = { done, abort };
  });
} catch (err) {
  port.postMessage({ kind: 'fatal', message: String((err as Error)?.message ?? err).slice(0, 2000) } satisfies EvaluationReply);
}
