// One translator from errors to RFC 9457 problem responses (application/problem+json): typed errors
// keep their status and message; validation failures list the failing paths; anything else is a 500
// whose detail is generic while the full error is logged.

import type { FastifyError, FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { FussError } from '@fuss/core';

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

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
    } else if (error.validation) {
      status = 400;
      type = 'validation';
      title = 'Bad Request';
      detail = `invalid request: ${error.validation.map((v) => `${error.validationContext ?? 'request'}${v.instancePath || ''} ${v.message ?? ''}`.trim()).join('; ')}`;
    } else if (typeof error.statusCode === 'number' && error.statusCode >= 400 && error.statusCode < 500) {
      status = error.statusCode;
      type = error.code?.toLowerCase().replace(/^fst_err_/, '').replace(/_/g, '-') ?? 'bad-request';
      title = 'Bad Request';
      detail = error.message;
    }
    if (status >= 500) request.log.error({ err: error }, 'request failed');
    else request.log.info({ status, type, detail }, 'request rejected');
    reply.status(status).type(PROBLEM_CONTENT_TYPE).send({ type: `https://fuss.dev/problems/${type}`, title, status, detail, instance: request.id });
  });
  app.setNotFoundHandler((request, reply) => {
    reply.status(404).type(PROBLEM_CONTENT_TYPE).send({ type: 'https://fuss.dev/problems/not-found', title: 'Not Found', status: 404, detail: `no route ${request.method} ${request.url.split('?')[0]}`, instance: request.id });
  });
});
