// Bearer-token checks. The admin token comes from FUSS_ADMIN_TOKEN; without one the server only
// listens on loopback (config.ts) and admin routes are open to local users. Participant tokens are
// looked up by their sha256 and are scoped to one federation. Tokens never reach the logs.

import { timingSafeEqual, createHash } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { ForbiddenError, UnauthorizedError } from '../errors.js';
import type { FederationsService } from '../services/federations-service.js';

export type Caller = { kind: 'admin' } | { kind: 'participant'; participantId: string; federationId: string; name: string };

function bearer(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (!header) return undefined;
  const match = /^Bearer\s+(\S+)$/i.exec(header);
  return match ? match[1] : undefined;
}

function sameSecret(a: string, b: string): boolean {
  // Compare digests so the comparison time does not depend on where the strings differ or their length.
  return timingSafeEqual(createHash('sha256').update(a).digest(), createHash('sha256').update(b).digest());
}

export function createAuth(deps: { adminToken?: string; federations: Pick<FederationsService, 'participantByToken'> }) {
  const identify = async (request: FastifyRequest): Promise<Caller | undefined> => {
    const token = bearer(request);
    if (deps.adminToken === undefined && token === undefined) return { kind: 'admin' };
    if (token === undefined) return undefined;
    if (deps.adminToken !== undefined && sameSecret(token, deps.adminToken)) return { kind: 'admin' };
    const participant = await deps.federations.participantByToken(token);
    return participant ? { kind: 'participant', participantId: participant.id, federationId: participant.federationId, name: participant.name } : undefined;
  };
  return {
    async requireAdmin(request: FastifyRequest): Promise<void> {
      const caller = await identify(request);
      if (!caller) throw new UnauthorizedError();
      if (caller.kind !== 'admin') throw new ForbiddenError('this operation needs the admin token');
    },
    /** A participant (not the admin): the identity its token names. */
    async requireParticipant(request: FastifyRequest): Promise<Extract<Caller, { kind: 'participant' }>> {
      const caller = await identify(request);
      if (!caller) throw new UnauthorizedError();
      if (caller.kind !== 'participant') throw new ForbiddenError('this operation needs a participant token');
      return caller;
    },
    /** The admin, or a participant of `federationId`. */
    async requireMember(request: FastifyRequest, federationId: string): Promise<Caller> {
      const caller = await identify(request);
      if (!caller) throw new UnauthorizedError();
      if (caller.kind === 'participant' && caller.federationId !== federationId) throw new ForbiddenError('this token belongs to another federation');
      return caller;
    },
  };
}

export type Auth = ReturnType<typeof createAuth>;
