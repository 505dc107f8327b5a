// Adam (Kingma and Ba 2015) over named Float32Array parameters, updated in place, as torch.optim.Adam
// with default betas (0.9, 0.999), eps 1e-8 and no weight decay. The state can be taken out and put
// back (a participant that keeps its optimiser across rounds), and each step can scale the learning
// rate (a schedule across rounds).

export interface AdamOptions {
  lr: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
}

export interface AdamState {
  step: number;
  m: Record<string, Float32Array>;
  v: Record<string, Float32Array>;
}

export class Adam {
  readonly lr: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  state: AdamState = { step: 0, m: {}, v: {} };

  /** `state`: moments and step count to continue from (copied), e.g. those of the previous round. */
  constructor(options: AdamOptions, state?: AdamState) {
    this.lr = options.lr;
    this.beta1 = options.beta1 ?? 0.9;
    this.beta2 = options.beta2 ?? 0.999;
    this.eps = options.eps ?? 1e-8;
    if (state) this.state = copyAdamState(state);
  }

  /** A copy of the state (step count and moments). */
  snapshot(): AdamState {
    return copyAdamState(this.state);
  }

  /**
   * One update of every parameter in `params` with the gradient of the same name, at learning rate
   * `lr * lrScale` (a schedule's factor; 1 by default).
   */
  updateInPlace(params: Record<string, Float32Array>, grads: Record<string, Float32Array>, lrScale = 1): void {
    this.state.step++;
    const t = this.state.step;
    const correction1 = 1 - this.beta1 ** t;
    const correction2 = 1 - this.beta2 ** t;
    const stepSize = (lrScale === 1 ? this.lr : this.lr * lrScale) / correction1;
    for (const [name, theta] of Object.entries(params)) {
      const grad = grads[name];
      const m = (this.state.m[name] ??= new Float32Array(theta.length));
      const v = (this.state.v[name] ??= new Float32Array(theta.length));
      const { beta1, beta2, eps } = this;
      for (let i = 0; i < theta.length; i++) {
        const gi = grad[i];
        m[i] = beta1 * m[i] + (1 - beta1) * gi;
        v[i] = beta2 * v[i] + (1 - beta2) * gi * gi;
        theta[i] -= (stepSize * m[i]) / (Math.sqrt(v[i] / correction2) + eps);
      }
    }
  }
}

function copyAdamState(state: AdamState): AdamState {
  const copy = (values: Record<string, Float32Array>) => Object.fromEntries(Object.entries(values).map(([name, array]) => [name, array.slice()]));
  return { step: state.step, m: copy(state.m), v: copy(state.v) };
}
