import type { DeviceRequest } from '@fuss/core';
import type { Command } from '../options.js';
import { DEVICE_OPTION } from './shared.js';

export const serverCommand: Command = {
  name: 'server',
  summary: 'Run the aggregation server (Postgres with DATABASE_URL, else embedded PGlite in ./.fuss/db).',
  usage: 'fuss server [--port N] [--host H] [--backbone ONNX] [--device auto|cpu|webgpu|cuda] [--eval-data DIR]',
  options: [
    { name: 'port', type: 'integer', arg: 'N', description: 'Port to listen on', default: 8080, min: 0, env: 'PORT' },
    { name: 'host', type: 'string', arg: 'H', description: 'Address to listen on (a non-loopback address needs FUSS_ADMIN_TOKEN)', default: '127.0.0.1', env: 'HOST' },
    { name: 'backbone', type: 'string', arg: 'ONNX', description: 'Backbone used by POST /segment (must match the federations\' backbone)', env: 'FUSS_BACKBONE' },
    { ...DEVICE_OPTION, default: 'cpu', description: 'onnxruntime execution provider of /segment (backbone and head); auto tries cuda, then webgpu, then cpu, and an unavailable one falls back to cpu with one log line' },
    { name: 'eval-data', type: 'string', arg: 'DIR', description: 'Labelled dataset (images/, labels/, dataset.json) on which every new global version is evaluated (mIoU, pixel accuracy; needs --backbone); off by default', env: 'FUSS_EVAL_DATA' },
    { name: 'db-dir', type: 'string', arg: 'DIR', description: 'Embedded database folder when DATABASE_URL is not set', default: '.fuss/db', env: 'FUSS_DB_DIR' },
  ],
  examples: ['fuss server', 'fuss server --backbone models/mobilenetv2-int8-features.onnx --eval-data ../shared/data/camvid/val', 'DATABASE_URL=postgresql://fuss@db/fuss FUSS_ADMIN_TOKEN=... fuss server --host 0.0.0.0 --port 8080'],
  async run(values, _positionals, io) {
    const { startServer } = await import('@fuss/aggregator');
    const server = await startServer({ port: values.port as number, host: values.host as string, pgliteDir: values['db-dir'] as string }, io.env, (line) => io.stderr(`${line}\n`), { backbonePath: values.backbone as string | undefined, device: values.device as DeviceRequest, evalDataDir: values['eval-data'] as string | undefined });
    await new Promise<void>((resolve) => {
      const stop = () => {
        io.stderr('shutting down\n');
        server.close().then(resolve, resolve);
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    return 0;
  },
};
