// Typed errors of @fuss/core. Each carries an HTTP-like status and a slug so that the server and the
// CLI translate them in one place (STYLE 11).

/** Base class of every error FUSS raises on purpose. */
export class FussError extends Error {
  /** HTTP status this error maps to when it reaches the server (4xx: the caller's fault). */
  readonly status: number;
  /** Short machine-readable slug, e.g. `shape-mismatch`. */
  readonly type: string;

  constructor(message: string, options: { status?: number; type?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.status = options.status ?? 400;
    this.type = options.type ?? 'fuss-error';
  }
}

/** A tensor or array does not have the shape or dtype the caller promised. */
export class ShapeError extends FussError {
  constructor(message: string) {
    super(message, { status: 400, type: 'shape-mismatch' });
  }
}

/** A tensor holds NaN or Infinity where finite numbers are required. */
export class NonFiniteError extends FussError {
  constructor(message: string) {
    super(message, { status: 400, type: 'non-finite' });
  }
}

/** Input data (dataset folder, image, label map, config file) is missing or malformed. */
export class DataError extends FussError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, { status: 400, type: 'bad-data', cause: options.cause });
  }
}

/** A backbone model file is missing, unreadable or does not produce usable spatial features. */
export class BackboneError extends FussError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, { status: 400, type: 'bad-backbone', cause: options.cause });
  }
}

/** Options that cannot be satisfied, e.g. more clients than images. */
export class ConfigError extends FussError {
  constructor(message: string) {
    super(message, { status: 400, type: 'bad-config' });
  }
}

/** A network resource (model hub, server) could not be reached or answered with an error. */
export class NetworkError extends FussError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, { status: 502, type: 'network', cause: options.cause });
  }
}

/** The first line of an error's message (onnxruntime and native errors carry long multi-line details). */
export function firstLineOf(err: unknown): string {
  return String((err as Error)?.message ?? err).split('\n')[0];
}
