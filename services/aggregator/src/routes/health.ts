import type { FastifyInstance } from 'fastify';
import { Type } from '@sinclair/typebox';
import type { Database } from '../db/database.js';

export async function healthRoutes(app: FastifyInstance, opts: { db: Database }) {
  app.get('/healthz', {
    schema: { operationId: 'health', summary: 'Liveness: the process answers', tags: ['operations'], response: { 200: Type.Object({ status: Type.Literal('ok') }) } },
    handler: async () => ({ status: 'ok' as const }),
  });
  app.get('/readyz', {
    schema: {
      operationId: 'ready',
      summary: 'Readiness: the database answers',
      tags: ['operations'],
      response: { 200: Type.Object({ status: Type.Literal('ready'), database: Type.String() }), 503: Type.Object({ status: Type.Literal('unavailable'), database: Type.String() }) },
    },
    handler: async (_request, reply) => {
      try {
        await opts.db.sql.query('SELECT 1');
        return { status: 'ready' as const, database: opts.db.kind };
      } catch {
        return reply.status(503).send({ status: 'unavailable' as const, database: opts.db.kind });
      }
    },
  });
}
