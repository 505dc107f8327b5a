// Domain errors of the aggregation server. Each maps to an HTTP status in one place
// (plugins/problem-details.ts), like core's errors.

import { FussError } from '@fuss/core';

export class NotFoundError extends FussError {
  constructor(message: string) {
    super(message, { status: 404, type: 'not-found' });
  }
}

export class UnauthorizedError extends FussError {
  constructor(message = 'missing or invalid bearer token') {
    super(message, { status: 401, type: 'unauthorized' });
  }
}

export class ForbiddenError extends FussError {
  constructor(message: string) {
    super(message, { status: 403, type: 'forbidden' });
  }
}

export class ConflictError extends FussError {
  constructor(message: string, type = 'conflict') {
    super(message, { status: 409, type });
  }
}

export class PayloadTooLargeError extends FussError {
  constructor(message: string) {
    super(message, { status: 413, type: 'payload-too-large' });
  }
}

export class UnsupportedMediaTypeError extends FussError {
  constructor(message: string) {
    super(message, { status: 415, type: 'unsupported-media-type' });
  }
}

/** The server is busy; the client should retry after `retryAfterSeconds` (sent as Retry-After). */
export class ServiceUnavailableError extends FussError {
  constructor(message: string, readonly retryAfterSeconds: number) {
    super(message, { status: 503, type: 'overloaded' });
  }
}
