// Bearer-token checks, run in `onRequest`: before any body is read or parsed, so a request without a
// valid token costs the server a header and a token lookup, never a body. Each route declares who
// may call it in its `config.access`; a route under /v1 or /segment without one is refused at start.
//
// The admin token comes from FUSS_ADMIN_TOKEN. Without one the server listens only on loopback
// (config.ts) and treats local callers as the admin, but only for requests addressed to a loopback
// name (Host, and Origin when a browser sends one): a web page the operator opens elsewhere cannot
// reach it through DNS rebinding or a cross-site form. Participant tokens are looked up by their
// sha256 and belong to one federation. Tokens never reach the logs.

import { timingSafeEqual, createHash } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { ForbiddenError, UnauthorizedError } from '../errors.js';
import { isLoopback } from '../config.js';
import type { FederationsService } from '../services/federations-service.js';

export type Caller = { kind: 'admin' } | { kind: 'metrics' } | { kind: 'participant'; participantId: string; federationId: string; name: string };
export type ParticipantCaller = Extract<Caller, { kind: 'participant' }>;

/**
 * Who may call a route:
 * - `public`: anyone (health, documentation);
 * - `metrics`: anyone, unless a metrics token is configured (then it or the admin token);
 * - `admin`: the admin token;
 * - `participant`: any participant token;
 * - `member`: the admin or a participant of the federation named by the `federationId` path parameter
 *   or the `federation` query parameter;
 * - `federation-participant`: a participant of that federation (not the admin).
 */
export type Access = 'public' | 'metrics' | 'admin' | 'participant' | 'member' | 'federation-participant';

declare module 'fastify' {
  interface FastifyContextConfig {
    access?: Access;
  }
  interface FastifyRequest {
    /** The authenticated caller (undefined on public routes). */
    caller?: Caller;
  }
}

function bearer(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (!header) return undefined;
  const match = /^Bearer\s+(\S{1,512})$/i.exec(header);
  return match ? match[1] : undefined;
}

function sameSecret(a: string, b: string): boolean {
  // Compare digests so the comparison time does not depend on where the strings differ or their length.
  return timingSafeEqual(createHash('sha256').update(a).digest(), createHash('sha256').update(b).digest());
}

/** The host name of a Host header value (`name`, `name:port`, `[v6]:port`), lower case. */
function hostName(value: string): string {
  const v6 = /^\[([^\]]*)\](?::\d+)?$/.exec(value);
  if (v6) return v6[1].toLowerCase();
  return value.replace(/:\d+$/, '').toLowerCase();
}

function federationOf(request: FastifyRequest): string | undefined {
  const params = request.params as { federationId?: unknown } | undefined;
  const query = request.query as { federation?: unknown } | undefined;
  const id = params?.federationId ?? query?.federation;
  return typeof id === 'string' ? id : undefined;
}

export interface AuthOptions {
  adminToken?: string;
  metricsToken?: string;
  federations: Pick<FederationsService, 'participantByToken'>;
}

export const authPlugin = fp(async (app: FastifyInstance, opts: AuthOptions) => {
  const { adminToken, metricsToken } = opts;

  const identify = async (request: FastifyRequest): Promise<Caller | undefined> => {
    const token = bearer(request);
    if (adminToken === undefined && token === undefined) return { kind: 'admin' };
    if (token === undefined) return undefined;
    if (adminToken !== undefined && sameSecret(token, adminToken)) return { kind: 'admin' };
    if (metricsToken !== undefined && sameSecret(token, metricsToken)) return { kind: 'metrics' };
    const participant = await opts.federations.participantByToken(token);
    return participant ? { kind: 'participant', participantId: participant.id, federationId: participant.federationId, name: participant.name } : undefined;
  };

  app.addHook('onRoute', (route) => {
    const url = route.url as string;
    if ((url.startsWith('/v1') || url.startsWith('/segment')) && !route.config?.access) {
      throw new Error(`route ${route.method} ${url} declares no config.access`);
    }
  });

  app.addHook('onRequest', async (request) => {
    if (adminToken === undefined) {
      const host = request.headers.host;
      if (!host || !isLoopback(hostName(host))) {
        throw new ForbiddenError('this server has no admin token (FUSS_ADMIN_TOKEN), so it answers only requests addressed to a loopback name (Host)');
      }
      const origin = request.headers.origin;
      if (origin !== undefined && origin !== 'null') {
        let originHost: string | undefined;
        try {
          originHost = new URL(origin).hostname;
        } catch {
          originHost = undefined;
        }
        if (!originHost || !isLoopback(hostName(originHost))) throw new ForbiddenError('this server has no admin token (FUSS_ADMIN_TOKEN), so it refuses requests from pages of other sites (Origin)');
      } else if (origin === 'null') {
        throw new ForbiddenError('this server has no admin token (FUSS_ADMIN_TOKEN), so it refuses requests from pages of other sites (Origin)');
      }
    }
    const access = request.routeOptions.config?.access ?? 'public';
    if (access === 'public') return;
    if (access === 'metrics' && metricsToken === undefined) return;
    const caller = await identify(request);
    if (!caller) throw new UnauthorizedError();
    switch (access) {
      case 'metrics':
        if (caller.kind !== 'metrics' && caller.kind !== 'admin') throw new ForbiddenError('GET /metrics needs the metrics token');
        break;
      case 'admin':
        if (caller.kind !== 'admin') throw new ForbiddenError('this operation needs the admin token');
        break;
      case 'participant':
        if (caller.kind !== 'participant') throw new ForbiddenError('this operation needs a participant token');
        break;
      case 'member':
      case 'federation-participant': {
        if (caller.kind === 'metrics') throw new ForbiddenError('the metrics token reads only GET /metrics');
        if (access === 'federation-participant' && caller.kind !== 'participant') throw new ForbiddenError('only participants join rounds and upload updates');
        if (caller.kind === 'participant' && caller.federationId !== federationOf(request)) throw new ForbiddenError('this token belongs to another federation');
        break;
      }
    }
    request.caller = caller;
  });
});

/** The participant caller of a route whose access is `participant` or `federation-participant`. */
export function participantCaller(request: FastifyRequest): ParticipantCaller {
  const caller = request.caller;
  if (caller?.kind !== 'participant') throw new ForbiddenError('this operation needs a participant token');
  return caller;
}
