// Optimiser state on disk: the moments of a server optimiser (kept by the server next to the model
// version it produced) or of a participant's Adam optimisers (kept by the SDK in its cache folder),
// as a safetensors file. Tensors `<group>.m.<name>` and `<group>.v.<name>`; metadata names the format,
// the optimiser (a state written for another one is not used) and each group's step count.

import { ShapeError } from '../errors.js';
import { decodeSafetensors, encodeSafetensors, SafetensorsError, shownName, type NamedTensor } from './safetensors.js';

export const OPTIMIZER_STATE_FORMAT = 'fuss-optimizer-state';

/** One optimiser's state: steps taken and its moments per parameter name (Adam's and the server's). */
export interface OptimizerMoments {
  step: number;
  m: Record<string, Float32Array>;
  v?: Record<string, Float32Array>;
}

/**
 * Serialises the states of named groups (e.g. `{ head, centroids }`) written by optimiser `optimizer`
 * (a text such as `fedadam:0.01:0.001:0.9:0.99` or `adam`).
 */
export function encodeOptimizerState(optimizer: string, groups: Record<string, OptimizerMoments>): Uint8Array {
  const tensors: Record<string, NamedTensor> = {};
  const steps: Record<string, number> = {};
  for (const [group, state] of Object.entries(groups)) {
    steps[group] = state.step;
    for (const [moment, values] of [['m', state.m], ['v', state.v]] as const) {
      for (const [name, data] of Object.entries(values ?? {})) tensors[`${group}.${moment}.${name}`] = { dims: [data.length], data };
    }
  }
  return encodeSafetensors(tensors, { format: OPTIMIZER_STATE_FORMAT, optimizer, steps: JSON.stringify(steps) });
}

/**
 * Reads a state written by {@link encodeOptimizerState}. `lengths[group][name]` gives the values every
 * moment tensor must hold; a group's `v` is present when the file has any of its v tensors (then all).
 *
 * @returns undefined when the file was written by another optimiser than `optimizer`
 * @throws SafetensorsError / ShapeError / NonFiniteError when the file is damaged or does not fit `lengths`
 */
export function decodeOptimizerState(
  bytes: Uint8Array,
  optimizer: string,
  lengths: Record<string, Record<string, number>>,
  what = 'optimizer state',
): Record<string, OptimizerMoments> | undefined {
  const { tensors, metadata } = decodeSafetensors(bytes, what, { dtypes: ['F32'] });
  if (metadata.format !== OPTIMIZER_STATE_FORMAT) throw new SafetensorsError(`${what}: not an optimizer state (metadata "format" is ${JSON.stringify(metadata.format)})`);
  if (metadata.optimizer !== optimizer) return undefined;
  let steps: Record<string, unknown>;
  try {
    steps = JSON.parse(metadata.steps ?? '');
  } catch {
    throw new SafetensorsError(`${what}: metadata "steps" is not JSON`);
  }
  const groups: Record<string, OptimizerMoments> = {};
  const used = new Set<string>();
  for (const [group, names] of Object.entries(lengths)) {
    const step = steps?.[group];
    if (!Number.isSafeInteger(step) || (step as number) < 0) throw new SafetensorsError(`${what}: no step count for ${shownName(group)}`);
    const read = (moment: 'm' | 'v', required: boolean) => {
      const out: Record<string, Float32Array> = {};
      for (const [name, length] of Object.entries(names)) {
        const key = `${group}.${moment}.${name}`;
        const tensor = tensors[key];
        if (!tensor) {
          if (required) throw new ShapeError(`${what}: tensor ${shownName(key)} is missing`);
          return undefined;
        }
        if (tensor.data.length !== length) throw new ShapeError(`${what}: tensor ${shownName(key)} has ${tensor.data.length} values, expected ${length}`);
        out[name] = tensor.data;
        used.add(key);
      }
      return out;
    };
    const m = read('m', true)!;
    const hasV = Object.keys(names).some((name) => tensors[`${group}.v.${name}`] !== undefined);
    groups[group] = { step: step as number, m, ...(hasV ? { v: read('v', true)! } : {}) };
  }
  const extra = Object.keys(tensors).filter((name) => !used.has(name));
  if (extra.length) throw new ShapeError(`${what}: unexpected tensors ${extra.slice(0, 5).map(shownName).join(', ')}`);
  return groups;
}
