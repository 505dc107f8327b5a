// Errors of the FUSS client. Every message is one readable line that names the request
// (`PUT /v1/federations/…/rounds/3/update: 409 round-not-open: round 3 is closed`) and never
// contains the bearer token.

/** Base class of the client's errors: the operation and request that failed. */
export class FussClientError extends Error {
  /** Operation name (the OpenAPI operationId, e.g. `submitUpdate`). */
  readonly operation: string;
  readonly method: string;
  /** Path of the request, without the query string. */
  readonly path: string;
  /** Attempts made, retries included. */
  readonly attempts: number;

  constructor(message: string, init: { operation: string; method: string; path: string; attempts: number; cause?: unknown }) {
    super(message, init.cause === undefined ? undefined : { cause: init.cause });
    this.name = new.target.name;
    this.operation = init.operation;
    this.method = init.method;
    this.path = init.path;
    this.attempts = init.attempts;
  }
}

/** RFC 9457 problem details, as the server answers errors (`application/problem+json`). */
export interface ProblemDetails {
  type?: string;
  title?: string;
  status?: number;
  detail?: string;
  instance?: string;
}

/**
 * The server answered with an error status: a 4xx other than 429 (never retried), or a 5xx / 429
 * that was still failing after the last attempt.
 */
export class FussApiError extends FussClientError {
  readonly status: number;
  /** The problem `type` as sent (e.g. `https://fuss.dev/problems/round-not-open`); empty when the answer was not a problem. */
  readonly type: string;
  /** Last segment of `type` (`round-not-open`), or the status text when the answer was not a problem. */
  readonly code: string;
  readonly title: string;
  readonly detail: string;
  /** The server's request id (`instance`), for its log. */
  readonly instance?: string;

  constructor(
    message: string,
    init: { operation: string; method: string; path: string; attempts: number; status: number; type: string; code: string; title: string; detail: string; instance?: string },
  ) {
    super(message, init);
    this.status = init.status;
    this.type = init.type;
    this.code = init.code;
    this.title = init.title;
    this.detail = init.detail;
    this.instance = init.instance;
  }
}

/** The request could not be completed (connection refused or reset, timeout, ...) after the last attempt. */
export class FussNetworkError extends FussClientError {
  /** The error code found on the cause chain (`ECONNREFUSED`, `UND_ERR_HEADERS_TIMEOUT`, ...), if any. */
  readonly code?: string;

  constructor(message: string, init: { operation: string; method: string; path: string; attempts: number; code?: string; cause: unknown }) {
    super(message, init);
    this.code = init.code;
  }
}
