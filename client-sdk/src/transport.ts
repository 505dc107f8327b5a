// The client's HTTP transport: Node's built-in fetch over a pooled keep-alive undici Agent, with
// retries (exponential backoff with full jitter, Retry-After honoured) on network errors, 5xx and
// 429, typed errors for everything else, and the bearer token on every request. Bodies are bytes or
// strings, never streams, so every attempt re-sends them whole; answers are read whole inside the
// attempt, so a connection lost mid-download is retried too.

import { Agent, type Dispatcher } from 'undici';
import { FussApiError, FussNetworkError, type ProblemDetails } from './errors.js';

export interface TransportTimeouts {
  /** Establishing a TCP/TLS connection (default 10 s). */
  connectMs?: number;
  /**
   * Waiting for the answer's headers once the request is sent (default 120 s: an upload that
   * completes a round may wait for the aggregation).
   */
  headersMs?: number;
  /** Longest pause between two chunks of an answer's body (default 300 s, for slow links). */
  bodyMs?: number;
  /** How long an idle pooled connection is kept open (default 30 s). */
  keepAliveMs?: number;
}

export interface RetryOptions {
  /** Attempts in all, the first one included (default 5; 1 disables retries). */
  maxAttempts?: number;
  /** Backoff before retry n is uniform in [0, min(maxDelayMs, baseDelayMs * 2^(n-1))) (default 500 ms). */
  baseDelayMs?: number;
  /** Cap of the exponential backoff (default 30 s). */
  maxDelayMs?: number;
  /** Cap on a wait asked by Retry-After (default 300 s). */
  maxRetryAfterMs?: number;
  /** Factor applied to Retry-After waits (default 1; tests shrink it). */
  retryAfterScale?: number;
}

/** Reported before each retry; `attempt` is the attempt that failed (1-based). */
export interface RetryEvent {
  operation: string;
  method: string;
  path: string;
  attempt: number;
  maxAttempts: number;
  delayMs: number;
  /** Why: `503 Service Unavailable`, `429 Too Many Requests (Retry-After 2 s)`, `ECONNRESET: socket hang up`, ... */
  reason: string;
  status?: number;
  code?: string;
}

export interface TransportOptions {
  /** Server root, e.g. `http://127.0.0.1:8080` (a path prefix is kept). */
  baseUrl: string;
  /** Bearer token (admin or participant) sent on every request. */
  token?: string;
  timeouts?: TransportTimeouts;
  /** Most connections kept to the server (default 8). */
  connections?: number;
  retry?: RetryOptions;
  onRetry?: (event: RetryEvent) => void;
  /** Cancels every request of this transport (per-request signals add to it). */
  signal?: AbortSignal;
  /** Use this undici dispatcher instead of the transport's own Agent (it is then not closed by close()). */
  dispatcher?: Dispatcher;
  /** Source of randomness for the jitter, in [0, 1) (default Math.random). */
  random?: () => number;
}

export type QueryValue = string | number | boolean | undefined;

export interface TransportRequest {
  /** Operation name for errors and retry events (the OpenAPI operationId). */
  operation: string;
  method: string;
  /** Path below baseUrl, starting with `/`; path parameters already encoded. */
  path: string;
  query?: Record<string, QueryValue>;
  headers?: Record<string, string>;
  body?: Uint8Array | string;
  /**
   * Whether repeating the request is harmless. Defaults to true except for POST and PATCH. A request that is
   * not idempotent is retried only when the server cannot have acted on it: 429, or a connection
   * that was never established.
   */
  idempotent?: boolean;
  signal?: AbortSignal;
}

export interface TransportResponse {
  status: number;
  headers: Headers;
  body: Uint8Array;
  /** Attempts it took, the successful one included. */
  attempts: number;
}

export const DEFAULT_TIMEOUTS: Required<TransportTimeouts> = { connectMs: 10_000, headersMs: 120_000, bodyMs: 300_000, keepAliveMs: 30_000 };
export const DEFAULT_RETRY: Required<RetryOptions> = { maxAttempts: 5, baseDelayMs: 500, maxDelayMs: 30_000, maxRetryAfterMs: 300_000, retryAfterScale: 1 };

/** Network error codes worth another attempt (found anywhere on the error's cause chain). */
const RETRYABLE_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);
/** Codes that mean the request never reached the server: safe to retry even when not idempotent. */
const NOT_SENT_CODES = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENETDOWN', 'EAI_AGAIN', 'UND_ERR_CONNECT_TIMEOUT']);

const NULL_BODY_STATUSES = new Set([101, 204, 205, 304]);

export class Transport {
  readonly baseUrl: string;
  private readonly token?: string;
  private readonly dispatcher: Dispatcher;
  private readonly ownsDispatcher: boolean;
  private readonly retry: Required<RetryOptions>;
  private readonly onRetry?: (event: RetryEvent) => void;
  private readonly signal?: AbortSignal;
  private readonly random: () => number;

  constructor(options: TransportOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    new URL(this.baseUrl); // throws on a malformed base URL, early
    this.token = options.token;
    const timeouts = { ...DEFAULT_TIMEOUTS, ...definedOnly(options.timeouts) };
    this.retry = { ...DEFAULT_RETRY, ...definedOnly(options.retry) };
    if (!Number.isInteger(this.retry.maxAttempts) || this.retry.maxAttempts < 1) throw new RangeError(`retry.maxAttempts must be an integer >= 1 (got ${this.retry.maxAttempts})`);
    this.onRetry = options.onRetry;
    this.signal = options.signal;
    this.random = options.random ?? Math.random;
    this.ownsDispatcher = !options.dispatcher;
    this.dispatcher =
      options.dispatcher ??
      new Agent({
        connect: { timeout: timeouts.connectMs },
        headersTimeout: timeouts.headersMs,
        bodyTimeout: timeouts.bodyMs,
        keepAliveTimeout: timeouts.keepAliveMs,
        connections: options.connections ?? 8,
      });
  }

  /** Sends a request (with retries) and reads its answer whole; throws FussApiError on an error status. */
  async request(request: TransportRequest): Promise<TransportResponse> {
    const url = new URL(this.baseUrl + request.path);
    for (const [name, value] of Object.entries(request.query ?? {})) if (value !== undefined) url.searchParams.set(name, String(value));
    return this.send({
      operation: request.operation,
      method: request.method.toUpperCase(),
      url,
      headers: new Headers(request.headers),
      body: request.body,
      idempotent: request.idempotent,
      signal: request.signal,
    });
  }

  /** `request` and parse the answer as JSON. */
  async json<T>(request: TransportRequest): Promise<{ data: T; status: number; headers: Headers }> {
    const response = await this.request({ ...request, headers: { accept: 'application/json', ...request.headers } });
    return { data: JSON.parse(new TextDecoder().decode(response.body)) as T, status: response.status, headers: response.headers };
  }

  /**
   * A fetch function for the generated client: the same retries, timeouts, token and errors, with
   * `operation` named in errors. Error statuses throw FussApiError instead of returning a Response.
   */
  fetchFor(operation: string, options: { idempotent?: boolean } = {}): typeof fetch {
    return async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
      const request = input instanceof Request ? input : new Request(input, init);
      // Read the body once into bytes so that every attempt can send it again.
      const body = request.body === null ? undefined : new Uint8Array(await request.arrayBuffer());
      const response = await this.send({
        operation,
        method: request.method.toUpperCase(),
        url: new URL(request.url),
        headers: new Headers(request.headers),
        body,
        idempotent: options.idempotent,
        signal: init?.signal ?? request.signal,
      });
      return new Response(NULL_BODY_STATUSES.has(response.status) ? null : response.body, { status: response.status, headers: response.headers });
    };
  }

  /** Closes the pooled connections (when the Agent is the transport's own). */
  async close(): Promise<void> {
    if (this.ownsDispatcher) await this.dispatcher.close();
  }

  private async send(request: {
    operation: string;
    method: string;
    url: URL;
    headers: Headers;
    body?: Uint8Array | string;
    idempotent?: boolean;
    signal?: AbortSignal;
  }): Promise<TransportResponse> {
    const { operation, method, url, headers, body } = request;
    const path = url.pathname;
    const idempotent = request.idempotent ?? (method !== 'POST' && method !== 'PATCH');
    const signals = [this.signal, request.signal].filter((s): s is AbortSignal => s !== undefined);
    const signal = signals.length === 0 ? undefined : signals.length === 1 ? signals[0] : AbortSignal.any(signals);
    if (this.token) headers.set('authorization', `Bearer ${this.token}`);
    const { maxAttempts } = this.retry;
    const context = { operation, method, path };

    for (let attempt = 1; ; attempt++) {
      signal?.throwIfAborted();
      let failure: { reason: string; status?: number; code?: string; retryAfterMs?: number; error: Error };
      try {
        const response = await fetch(url, { method, headers, body, signal, redirect: 'follow', dispatcher: this.dispatcher } as RequestInit);
        const bytes = new Uint8Array(await response.arrayBuffer());
        if (response.ok) return { status: response.status, headers: response.headers, body: bytes, attempts: attempt };
        const retryable = response.status === 429 || (response.status >= 500 && idempotent);
        const last = !retryable || attempt >= maxAttempts;
        const error = this.apiError(context, response, bytes, attempt, retryable && last);
        if (last) throw error;
        const retryAfterMs = parseRetryAfter(response.headers.get('retry-after'));
        const reason = `${response.status} ${response.statusText || error.code}${retryAfterMs === undefined ? '' : ` (Retry-After ${formatSeconds(retryAfterMs)})`}`;
        failure = { reason, status: response.status, retryAfterMs, error };
      } catch (error) {
        if (signal?.aborted) throw signal.reason;
        if (error instanceof FussApiError) throw error;
        const code = errorCode(error);
        const retryable = code !== undefined && RETRYABLE_CODES.has(code) && (idempotent || NOT_SENT_CODES.has(code));
        const reason = this.scrub(code ? `${code}: ${innermostMessage(error)}` : innermostMessage(error));
        if (!retryable || attempt >= maxAttempts) {
          const unsafe = !idempotent && code !== undefined && RETRYABLE_CODES.has(code);
          const tail = attempt > 1 ? ` (gave up after ${attempt} attempts)` : unsafe ? ' (not retried: the request may have reached the server)' : '';
          throw new FussNetworkError(`${method} ${path}: network error: ${reason}${tail}`, { ...context, attempts: attempt, code, cause: error });
        }
        failure = { reason, code, error: error as Error };
      }
      const delayMs = this.delay(attempt, failure.retryAfterMs);
      this.onRetry?.({ ...context, attempt, maxAttempts, delayMs, reason: failure.reason, status: failure.status, code: failure.code });
      await sleep(delayMs, signal);
    }
  }

  /** Wait before the retry that follows failed attempt `attempt`: Retry-After when given, else full jitter. */
  private delay(attempt: number, retryAfterMs: number | undefined): number {
    const { baseDelayMs, maxDelayMs, maxRetryAfterMs, retryAfterScale } = this.retry;
    if (retryAfterMs !== undefined) return Math.round(Math.min(retryAfterMs, maxRetryAfterMs) * retryAfterScale);
    return Math.floor(this.random() * Math.min(maxDelayMs, baseDelayMs * 2 ** (attempt - 1)));
  }

  private apiError(context: { operation: string; method: string; path: string }, response: Response, bytes: Uint8Array, attempts: number, gaveUp: boolean): FussApiError {
    const text = new TextDecoder().decode(bytes);
    let problem: ProblemDetails = {};
    if (/json/i.test(response.headers.get('content-type') ?? '')) {
      try {
        const parsed: unknown = JSON.parse(text);
        if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) problem = parsed as ProblemDetails;
      } catch {
        // not JSON after all: the text is the detail
      }
    }
    const type = typeof problem.type === 'string' ? problem.type : '';
    const title = typeof problem.title === 'string' ? problem.title : response.statusText;
    const code = type ? (type.replace(/\/+$/, '').split('/').pop() ?? type) : slug(title || `http-${response.status}`);
    const rawDetail = typeof problem.detail === 'string' ? problem.detail : Object.keys(problem).length > 0 ? title : text.replace(/\s+/g, ' ').trim();
    const detail = this.scrub(truncate(rawDetail, 500));
    const tail = gaveUp ? ` (gave up after ${attempts} attempts)` : '';
    const message = `${context.method} ${context.path}: ${response.status} ${code}${detail ? `: ${detail}` : ''}${tail}`;
    return new FussApiError(message, {
      ...context,
      attempts,
      status: response.status,
      type,
      code,
      title: this.scrub(title),
      detail,
      instance: typeof problem.instance === 'string' ? problem.instance : undefined,
    });
  }

  /** Never let the token reach a message, whatever the server or a library echoes. */
  private scrub(text: string): string {
    return this.token ? text.split(this.token).join('[token]') : text;
  }
}

/** Retry-After in ms: delay-seconds or an HTTP date (RFC 9110 10.2.3); undefined when absent or malformed. */
export function parseRetryAfter(value: string | null, now: number = Date.now()): number | undefined {
  if (value === null) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** The first error code (`ECONNRESET`, `UND_ERR_SOCKET`, ...) on an error's cause chain. */
export function errorCode(error: unknown): string | undefined {
  const seen = new Set<unknown>();
  const queue: unknown[] = [error];
  while (queue.length > 0) {
    const current = queue.shift();
    if (!current || typeof current !== 'object' || seen.has(current)) continue;
    seen.add(current);
    const { code, cause, errors } = current as { code?: unknown; cause?: unknown; errors?: unknown };
    if (typeof code === 'string' && code.length > 0) return code;
    queue.push(cause);
    if (Array.isArray(errors)) queue.push(...errors);
  }
  return undefined;
}

function innermostMessage(error: unknown): string {
  let current = error;
  for (let depth = 0; depth < 8; depth++) {
    const cause = (current as { cause?: unknown } | null)?.cause;
    if (!cause || typeof cause !== 'object') break;
    current = cause;
  }
  const message = current instanceof Error ? current.message : String(current);
  return message || (error instanceof Error ? error.message : String(error));
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function definedOnly<T extends object>(value: T | undefined): Partial<T> {
  return Object.fromEntries(Object.entries(value ?? {}).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function truncate(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

function slug(text: string): string {
  return text.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');
}

function formatSeconds(ms: number): string {
  return `${Math.round(ms / 100) / 10} s`;
}
