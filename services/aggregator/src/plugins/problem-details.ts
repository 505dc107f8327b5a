// One translator from errors to RFC 9457 problem responses (application/problem+json): typed errors
// keep their status and message; validation failures list the failing paths; anything else is a 500
// whose detail is generic while the full error is logged. Details and logged messages are capped in
// size (a hostile body can make a parser's message as large as itself). When a response goes out
// before the request's body was read (a 401 before an upload, say), the rest of the body is discarded
// for at most LINGER_MS and then the connection is closed: the client gets to read the answer (closing
// at once would reset the connection under it), and the server never reads a large unwanted body.

import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { FussError } from '@fuss/core';
import { ServiceUnavailableError } from '../errors.js';

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

/** How long a connection may go on sending a body the server answered without reading. */
export const LINGER_MS = 1000;

/** Longest `detail` of a problem response, and of a message written to the log, in characters. */
export const MAX_DETAIL_CHARS = 1000;

export function capText(text: string, max = MAX_DETAIL_CHARS): string {
  return text.length <= max ? text : `${text.slice(0, max)}... (${text.length - max} more characters)`;
}

/**
 * Whether a parsed JSON value holds a NUL character in a string or a key (Postgres text cannot). Only
 * arrays and plain objects are looked into (a body stream handed on unparsed is not JSON).
 */
export function containsNul(value: unknown): boolean {
  if (typeof value === 'string') return value.includes('\u0000');
  if (Array.isArray(value)) return value.some(containsNul);
  if (value === null || typeof value !== 'object') return false;
  const prototype = Object.getPrototypeOf(value);
  if (prototype !== Object.prototype && prototype !== null) return false;
  return Object.entries(value).some(([key, v]) => key.includes('\u0000') || containsNul(v));
}

/** Whether the request's body may still be (partly) on the wire. */
function bodyUnread(request: FastifyRequest): boolean {
  if (request.raw.complete) return false;
  const length = request.headers['content-length'];
  return request.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

function send(request: FastifyRequest, reply: FastifyReply, status: number, type: string, title: string, detail: string) {
  reply.status(status).type(PROBLEM_CONTENT_TYPE).send({ type: `https://fuss.dev/problems/${type}`, title, status, detail: capText(detail), instance: request.id });
}

/** Errors of the multipart parser (busboy) that a malformed body causes. */
const MULTIPART_CLIENT_ERROR = /^(Multipart: |Unexpected end of (form|multipart data)|Malformed part header|Part terminated early|the request is not multipart)/i;

export const problemDetails = fp(async (app: FastifyInstance) => {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    let status = 500;
    let type = 'internal';
    let title = 'Internal Server Error';
    let detail = 'the server failed to handle the request; see its log';
    if (error instanceof FussError) {
      status = error.status;
      type = error.type;
      title = error.name;
      detail = error.message;
      if (error instanceof ServiceUnavailableError) reply.header('retry-after', String(error.retryAfterSeconds));
    } else if (error.validation) {
      status = 400;
      type = 'validation';
      title = 'Bad Request';
      detail = `invalid request: ${error.validation.slice(0, 10).map((v) => `${error.validationContext ?? 'request'}${v.instancePath || ''} ${v.message ?? ''}`.trim()).join('; ')}`;
    } else if (typeof error.statusCode === 'number' && error.statusCode >= 400 && error.statusCode < 500) {
      status = error.statusCode;
      type = error.code?.toLowerCase().replace(/^fst_err_/, '').replace(/_/g, '-') ?? 'bad-request';
      title = 'Bad Request';
      detail = error.message;
    } else if (MULTIPART_CLIENT_ERROR.test(error.message ?? '')) {
      status = 400;
      type = 'bad-multipart';
      title = 'Bad Request';
      detail = `malformed multipart/form-data body: ${error.message}`;
    }
    if (status >= 500) request.log.error({ err: { type: error.name, message: capText(String(error.message)), stack: capText(String(error.stack), 4000) } }, 'request failed');
    else request.log.info({ status, type, detail: capText(detail, 200) }, 'request rejected');
    send(request, reply, status, type, title, detail);
  });
  app.setNotFoundHandler((request, reply) => {
    send(request, reply, 404, 'not-found', 'Not Found', `no route ${request.method} ${request.url.split('?')[0]}`);
  });
  // Node reads and discards the rest of an unread body to keep the connection alive: allow that for a
  // moment (so the client reads the answer), then close unless the body has ended.
  app.addHook('onSend', async (request, reply) => {
    const socket = request.raw.socket;
    if (!bodyUnread(request) || typeof socket?.destroy !== 'function') return; // (inject has no socket)
    // Fastify asks for `Connection: close` after a body error; Node would then reset the connection at
    // once, and the client could lose the answer.
    reply.removeHeader('connection');
    reply.raw.once('finish', () => {
      if (request.raw.complete) return;
      const timer = setTimeout(() => socket.destroy(), LINGER_MS);
      timer.unref();
      const stop = () => {
        clearTimeout(timer);
        request.raw.off('end', stop);
        socket.off('close', stop);
      };
      request.raw.once('end', stop);
      socket.once('close', stop);
    });
  });
  // Postgres cannot store NUL in text: refuse it in any JSON body or query string as a 400.
  app.addHook('preValidation', async (request) => {
    if (containsNul(request.query) || (request.body !== undefined && !Buffer.isBuffer(request.body) && containsNul(request.body))) {
      throw new FussError('text must not contain NUL characters', { status: 400, type: 'validation' });
    }
  });
});
