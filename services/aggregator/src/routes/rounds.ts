import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Readable } from 'node:stream';
import { Type, type Static } from '@sinclair/typebox';
import { FussError } from '@fuss/core';
import { FederationParams } from '../schemas/federations.js';
import { RoundParams, SubmitQuery } from '../schemas/rounds.js';
import type { RoundsService } from '../services/rounds-service.js';
import type { FederationsService } from '../services/federations-service.js';
import { participantCaller } from '../plugins/auth.js';
import { PayloadTooLargeError, ServiceUnavailableError } from '../errors.js';
import { containsNul } from '../plugins/problem-details.js';
import { problemResponses } from '../schemas/common.js';

const security = [{ bearer: [] }];

/**
 * Update bytes being received at once: each upload reserves its declared length before its body is
 * read, and gives it back when its response ends, so concurrent uploads cannot exhaust memory.
 */
export class UploadBudget {
  private inFlight = 0;
  constructor(readonly capacityBytes: number) {}

  /** Reserves `bytes`; false when that would exceed the capacity. */
  reserve(bytes: number): boolean {
    if (this.inFlight + bytes > this.capacityBytes) return false;
    this.inFlight += bytes;
    return true;
  }

  release(bytes: number): void {
    this.inFlight -= bytes;
  }

  get bytesInFlight(): number {
    return this.inFlight;
  }
}

export async function roundRoutes(app: FastifyInstance, opts: { rounds: RoundsService; federations: Pick<FederationsService, 'updateLimit'>; budget: UploadBudget }) {
  const { rounds, budget } = opts;
  // The update's body is not read here: the rounds service reads it as it arrives (hashing, checking and
  // writing it). Its length was checked against the federation's limit before (checkUploadSize), and
  // Node's parser stops at the Content-Length.
  app.addContentTypeParser('application/octet-stream', (_request, payload, done) => done(null, payload));

  app.post<{ Params: Static<typeof FederationParams> }>('/v1/federations/:federationId/rounds/current/join', {
    config: { access: 'federation-participant' },
    schema: { operationId: 'joinRound', summary: 'Join the current round: round number, model version, training settings and deadline, or why to wait', tags: ['rounds'], security, params: FederationParams, response: { 200: Type.Ref('JoinAnswer') } },
    handler: async (request, reply) => {
      const answer = await rounds.join(request.params.federationId, participantCaller(request).participantId);
      if (answer.retryAfterSeconds) reply.header('retry-after', String(answer.retryAfterSeconds));
      return answer;
    },
  });

  // Before the body is read: its declared length must fit this federation's model, and the bytes of
  // all uploads being received must fit the budget.
  const checkUploadSize = async (request: FastifyRequest<{ Params: Static<typeof RoundParams> }>, reply: FastifyReply) => {
    const declared = request.headers['content-length'];
    if (declared === undefined || !/^\d{1,15}$/.test(declared)) {
      throw new FussError('send the update with a Content-Length header (chunked uploads are not accepted)', { status: 411, type: 'length-required' });
    }
    const length = Number(declared);
    const limit = await opts.federations.updateLimit(request.params.federationId);
    if (length > limit) throw new PayloadTooLargeError(`the update is ${length} bytes; this federation's models take at most ${limit}`);
    if (!budget.reserve(length)) throw new ServiceUnavailableError('the server is receiving too many updates at once; retry shortly', 5);
    // Given back when the response has gone (or the connection broke), not when the body was read.
    reply.raw.once('close', () => budget.release(length));
  };

  app.put<{ Params: Static<typeof RoundParams>; Querystring: Static<typeof SubmitQuery> }>('/v1/federations/:federationId/rounds/:number/update', {
    config: { access: 'federation-participant' },
    onRequest: checkUploadSize,
    schema: {
      operationId: 'submitUpdate',
      summary: "Upload this participant's update to a round (safetensors body); idempotent: a retry with the same bytes counts once",
      tags: ['rounds'],
      security,
      params: RoundParams,
      querystring: SubmitQuery,
      // The body is a safetensors file (application/octet-stream), checked by the service; it is not
      // described with a JSON schema because the validator would test the raw Buffer against it.
      consumes: ['application/octet-stream'],
      response: { 200: Type.Ref('SubmitAnswer'), 201: Type.Ref('SubmitAnswer'), ...problemResponses(411, 503) },
    },
    handler: async (request, reply) => {
      const caller = participantCaller(request);
      // The raw stream the octet-stream parser hands on; a JSON or multipart body was parsed to something else.
      const body = request.body as unknown;
      if (!(body instanceof Readable)) throw new FussError('the body must be a safetensors file sent as application/octet-stream', { status: 415, type: 'unsupported-media-type' });
      let metrics: unknown;
      if (request.query.metrics !== undefined) {
        try {
          metrics = JSON.parse(request.query.metrics);
        } catch {
          throw new FussError('the metrics query parameter must be JSON', { status: 400, type: 'validation' });
        }
        if (typeof metrics !== 'object' || metrics === null || Array.isArray(metrics)) throw new FussError('the metrics query parameter must be a JSON object', { status: 400, type: 'validation' });
        // Postgres text and jsonb cannot hold NUL.
        if (containsNul(metrics)) throw new FussError('the metrics query parameter must not contain NUL characters', { status: 400, type: 'validation' });
      }
      const answer = await rounds.submit(request.params.federationId, caller.participantId, request.params.number, body, Number(request.headers['content-length']), request.query.samples, metrics);
      return reply.status(answer.accepted ? 201 : 200).send(answer);
    },
  });

  app.get<{ Params: Static<typeof FederationParams> }>('/v1/federations/:federationId/rounds', {
    config: { access: 'member' },
    schema: { operationId: 'listRounds', summary: 'Round history with timings and metrics', tags: ['rounds'], security, params: FederationParams, response: { 200: Type.Ref('RoundHistory') } },
    handler: async (request) => ({ rounds: await rounds.history(request.params.federationId) }),
  });
}
