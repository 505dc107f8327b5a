import type { DeviceRequest } from '@fuss/core';
import type { Command } from '../options.js';
import { createProgress, type Progress } from '../progress.js';
import { retryLine, RETRY_OPTIONS, SERVER_OPTION, serverUrl } from './remote.js';
import { DEVICE_OPTION } from './shared.js';

export const joinCommand: Command = {
  name: 'join',
  summary: 'Take part in a federation as a participant: train on local data each round and upload the update.',
  usage: 'fuss join --server URL --token TOKEN --data DIR --backbone ONNX [--rounds N] [--json]',
  options: [
    SERVER_OPTION,
    { name: 'token', type: 'string', arg: 'TOKEN', description: 'Participant token (from `fuss participant add`)', env: 'FUSS_TOKEN', required: true },
    { name: 'data', type: 'string', arg: 'DIR', description: 'Local dataset folder (images/ is read; nothing leaves this machine but the update)', required: true },
    { name: 'backbone', type: 'string', arg: 'ONNX', description: "Backbone model (.onnx); must be the federation's", env: 'FUSS_BACKBONE', required: true },
    { name: 'rounds', type: 'integer', arg: 'N', description: 'Stop after N rounds (default: until the federation finishes)', min: 1 },
    { name: 'cache', type: 'string', arg: 'DIR', description: 'Feature cache and participant state', default: '.fuss/cache', env: 'FUSS_CACHE' },
    { name: 'engine', type: 'string', arg: 'NAME', description: 'Training engine', default: 'auto', choices: ['auto', 'onnx', 'tfjs'], env: 'FUSS_ENGINE' },
    { name: 'threads', type: 'integer', arg: 'N', description: 'onnxruntime intra-op threads for backbone and training (0: all cores)', default: 0, min: 0, env: 'FUSS_THREADS' },
    DEVICE_OPTION,
    ...RETRY_OPTIONS,
    { name: 'json', type: 'boolean', description: 'Print one JSON summary per round on stdout' },
  ],
  examples: [
    'fuss join --server https://fuss.example.org --token fuss_p_... --data ./images --backbone ./mobilenetv2-int8-features.onnx',
    'FUSS_TOKEN=fuss_p_... fuss join --server http://10.0.0.5:8080 --data site-a --backbone model.onnx --rounds 1 --json',
  ],
  async run(values, _positionals, io) {
    const { FussClient } = await import('@fuss/client');
    const log = (line: string) => io.stderr(`${line}\n`);
    const threads = values.threads as number;
    const client = new FussClient({
      baseUrl: serverUrl(values),
      token: values.token as string,
      data: values.data as string,
      backbone: values.backbone as string,
      device: values.device as DeviceRequest,
      backboneOptions: { threads, log },
      engine: values.engine as string,
      engineOptions: { threads },
      cacheDir: values.cache as string,
      log,
      retry: { maxAttempts: values.retries as number },
      onRetry: (event) => log(retryLine(event)),
    });
    let bar: Progress | undefined;
    client.on('progress', (event) => {
      switch (event.phase) {
        case 'waiting':
          log(`waiting ${event.retryAfterSeconds}s: ${event.reason}`);
          break;
        case 'joined':
          log(`round ${event.round}: training from model version ${event.modelVersion} for ${event.localSteps} steps`);
          break;
        case 'features':
          if (event.done === 1) bar = createProgress(io, 'features', event.total);
          bar?.update(event.done);
          if (event.done === event.total) bar?.done(`${event.total} images`);
          break;
        case 'training':
          if (event.step === 1) bar = createProgress(io, `round ${event.round} training`, event.steps);
          bar?.update(event.step, `loss ${event.loss.toFixed(4)}`);
          if (event.step === event.steps) bar?.done(`loss ${event.loss.toFixed(4)}`);
          break;
        case 'uploaded':
          log(`round ${event.round}: update ${event.duplicate ? 'was already accepted' : 'accepted'} (${event.count} in the round)`);
          break;
      }
    });
    try {
      let rounds = 0;
      for (;;) {
        if (values.rounds !== undefined && rounds >= (values.rounds as number)) break;
        const result = await client.joinRound();
        if (result.status === 'finished') {
          log('the federation is finished');
          break;
        }
        rounds++;
        if (values.json) io.stdout(`${JSON.stringify(result)}\n`);
        else io.stdout(`round ${result.round}: ${result.steps} steps, loss ${result.loss ? result.loss.last.toFixed(4) : '-'}, uploaded ${(result.bytes.uploaded / 1e6).toFixed(2)} MB in ${result.seconds.total.toFixed(1)}s\n`);
      }
      return 0;
    } finally {
      await client.close();
    }
  },
};
