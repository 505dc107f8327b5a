// The parity check of an engine against the float64 reference (reference-loss.ts): the loss, and every
// component of every gradient against central differences of the float64 loss. Shared by the test suite
// (every available execution provider) and bench/gpu, which runs it on a GPU machine without vitest.

import { referenceLoss, type HeadValues } from '../reference-loss.js';
import { HEAD_PARAM_NAMES, type HeadParamName, type TrainingEngine } from '../engine.js';
import { randomStepCase, type StepCase, type StepCaseOptions } from './random-step-case.js';

/** The bound of the issue: the loss and each gradient within 1e-3 of the reference, relative to the tensor's largest entry. */
export const PARITY_RTOL = 1e-3;

/** Small cases (the reference is plain loops): sampled- and full-grid-like cell counts, every loss term. */
export const PARITY_CASES: readonly { label: string; options: StepCaseOptions }[] = [
  { label: 'correspondence + centroid loss, 9 cells', options: { seed: 31, cells: 9, images: 4, queries: 2, channels: 6, codeDim: 3, k: 3 } },
  { label: 'lambda, MOON and FedProx on the nonlinear branch, 12 cells', options: { seed: 32, cells: 12, images: 4, queries: 2, channels: 6, codeDim: 3, k: 3, lambda: 0.4, moon: 'nonlinear', prox: 'nonlinear' } },
  { label: 'MOON and FedProx on the whole head, full 4x4 grid', options: { seed: 33, cells: 16, images: 5, queries: 2, channels: 8, codeDim: 4, k: 4, moon: 'head', prox: 'head' } },
];

type TensorName = HeadParamName | 'centroids';

/** Float64 gradients by central differences; NaN where a step of h changes a discrete choice of the loss. */
export interface ReferenceGradients {
  grads: Record<TensorName, Float64Array>;
  /** Components compared, and components left out because ReLU, max(C, 0) or an argmax flips within h. */
  checked: number;
  skipped: number;
}

export function referenceGradients(c: StepCase): ReferenceGradients {
  const head = Object.fromEntries(HEAD_PARAM_NAMES.map((n) => [n, Float64Array.from(c.head[n])])) as Record<HeadParamName, Float64Array>;
  const centroids = Float64Array.from(c.centroids);
  const evaluate = () => referenceLoss(head as HeadValues, centroids, c.shape, c.batch, c.config);
  const base = evaluate().pattern;
  const grads = {} as Record<TensorName, Float64Array>;
  let checked = 0;
  let skipped = 0;
  const targets: [TensorName, Float64Array][] = [...HEAD_PARAM_NAMES.map((n) => [n, head[n]] as [TensorName, Float64Array]), ['centroids', centroids]];
  for (const [name, values] of targets) {
    // Codes enter the centroid loss detached: the head's gradient is that of the other terms, and the
    // centroids appear in the centroid loss only.
    const part = (r: ReturnType<typeof evaluate>) => (name === 'centroids' ? r.parts.cluster : r.loss - r.parts.cluster);
    const grad = new Float64Array(values.length);
    for (let i = 0; i < values.length; i++) {
      const original = values[i];
      const h = 1e-6 * Math.max(1, Math.abs(original));
      values[i] = original + h;
      const up = evaluate();
      values[i] = original - h;
      const down = evaluate();
      values[i] = original;
      if (up.pattern !== base || down.pattern !== base) {
        grad[i] = NaN;
        skipped++;
      } else {
        grad[i] = (part(up) - part(down)) / (2 * h);
        checked++;
      }
    }
    grads[name] = grad;
  }
  return { grads, checked, skipped };
}

/** Largest |a - ref| over the largest |ref|, both over the components the reference could differentiate. */
function relativeError(actual: ArrayLike<number>, reference: Float64Array): number {
  let scale = 0;
  let worst = 0;
  for (let i = 0; i < reference.length; i++) {
    if (Number.isNaN(reference[i])) continue;
    scale = Math.max(scale, Math.abs(reference[i]));
    worst = Math.max(worst, Math.abs(actual[i] - reference[i]));
  }
  return scale === 0 ? worst : worst / scale;
}

export interface ParityReport {
  label: string;
  /** |loss - reference| / |reference|. */
  lossError: number;
  /** Relative error of each gradient (see relativeError). */
  gradErrors: Record<TensorName, number>;
  /** The largest of lossError and gradErrors. */
  worst: number;
  clusterCountsEqual: boolean;
  checked: number;
  skipped: number;
}

/** Runs one step of `engine` on the case and compares it with the float64 reference. */
export async function measureParity(engine: TrainingEngine, label: string, options: StepCaseOptions): Promise<ParityReport> {
  const c = randomStepCase(options);
  const result = await engine.step(c.head, c.centroids, c.shape, c.batch, c.config);
  const reference = referenceLoss(c.head, c.centroids, c.shape, c.batch, c.config);
  const { grads, checked, skipped } = referenceGradients(c);
  const gradErrors = Object.fromEntries([
    ...HEAD_PARAM_NAMES.map((n) => [n, relativeError(result.headGrad[n], grads[n])]),
    ['centroids', relativeError(result.centroidGrad, grads.centroids)],
  ]) as Record<TensorName, number>;
  const lossError = Math.abs(result.loss - reference.loss) / Math.max(1e-6, Math.abs(reference.loss));
  return {
    label,
    lossError,
    gradErrors,
    worst: Math.max(lossError, ...Object.values(gradErrors)),
    clusterCountsEqual: Array.from(result.clusterCounts).join() === Array.from(reference.clusterCounts).join(),
    checked,
    skipped,
  };
}
