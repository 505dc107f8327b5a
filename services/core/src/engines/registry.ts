// Engine registry: each engine has a name and a priority; `auto` tries them fastest first, logs the
// choice, and reports every failure if none starts (as onnxruntime's resolveBackend).

import { ConfigError } from '../errors.js';
import type { DeviceChoice } from '../device/execution-device.js';
import type { TrainingEngine } from './engine.js';

export interface EngineFactoryOptions {
  threads?: number;
  /** onnxruntime execution device of the `onnx` engine (default cpu); tfjs picks its own backend. */
  device?: DeviceChoice;
  log?: (line: string) => void;
}

interface EngineEntry {
  name: string;
  /** Higher runs first under `auto`: measured speed (bench/RESULTS.md, train-step). */
  priority: number;
  create(options: EngineFactoryOptions): Promise<TrainingEngine>;
}

const ENGINES: EngineEntry[] = [
  {
    name: 'onnx',
    priority: 2,
    create: async (options) => (await import('./onnx/onnx-engine.js')).createOnnxEngine(options),
  },
  {
    name: 'tfjs',
    priority: 1,
    create: async (options) => (await import('./tfjs/tfjs-engine.js')).createTfjsEngine(options),
  },
];

export const ENGINE_NAMES = ENGINES.map((e) => e.name);

/** Creates the named engine, or under `auto` the highest-priority one that starts. */
export async function createEngine(name: string, options: EngineFactoryOptions = {}): Promise<TrainingEngine> {
  if (name !== 'auto') {
    const entry = ENGINES.find((e) => e.name === name);
    if (!entry) throw new ConfigError(`unknown engine "${name}"; choose auto, ${ENGINE_NAMES.join(', ')}`);
    const engine = await entry.create(options);
    options.log?.(`engine: ${engine.description} (requested)`);
    return engine;
  }
  const failures: string[] = [];
  for (const entry of [...ENGINES].sort((a, b) => b.priority - a.priority)) {
    try {
      const engine = await entry.create(options);
      options.log?.(`engine: ${engine.description} (fastest available)`);
      return engine;
    } catch (err) {
      failures.push(`${entry.name}: ${(err as Error).message}`);
      options.log?.(`engine: ${entry.name} unavailable (${(err as Error).message}); trying the next`);
    }
  }
  throw new ConfigError(`no training engine could start: ${failures.join('; ')}`);
}
