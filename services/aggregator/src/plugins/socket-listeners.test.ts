// A keep-alive connection carries many requests: the per-request listeners that the body-idle timer and
// the unread-body linger put on its socket must go when each request ends, or every request leaks a
// closure for the life of the connection (Node warns at 11).

import { afterEach, describe, expect, it } from 'vitest';
import Fastify, { type FastifyInstance } from 'fastify';
import { Agent, request } from 'node:http';
import type { Socket } from 'node:net';
import { bodyIdleTimeout } from './body-idle.js';
import { problemDetails } from './problem-details.js';

let app: FastifyInstance | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

function send(port: number, agent: Agent, path: string, body: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'POST', agent, headers: { 'content-type': 'application/octet-stream', 'content-length': body.length } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('listeners on a keep-alive socket', () => {
  it('stay bounded over 40 requests, read or answered unread', async () => {
    app = Fastify();
    await app.register(problemDetails);
    await app.register(bodyIdleTimeout, { idleMs: 5000 });
    app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));
    app.post('/read', async (req) => ({ bytes: (req.body as Buffer).length }));
    // Answered before its body is read (as a 401 would be): the linger path.
    app.post('/unread', { onRequest: async (_req, reply) => reply.status(401).send({ error: 'no' }) }, async () => ({}));
    const sockets: Socket[] = [];
    app.server.on('connection', (socket: Socket) => sockets.push(socket));
    await app.listen({ host: '127.0.0.1', port: 0 });
    const port = (app.server.address() as { port: number }).port;
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.name);
    process.on('warning', onWarning);
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 40; i++) statuses.push(await send(port, agent, i % 4 === 3 ? '/unread' : '/read', Buffer.alloc(16)));
      expect(statuses.filter((s) => s === 200)).toHaveLength(30);
      // The small unread bodies arrive with their headers, so the connection survives them.
      expect(sockets).toHaveLength(1);
      const [socket] = sockets;
      expect(socket.listenerCount('close')).toBeLessThan(5);
      expect(socket.listenerCount('data')).toBeLessThan(3);
      expect(warnings).not.toContain('MaxListenersExceededWarning');
    } finally {
      process.off('warning', onWarning);
      agent.destroy();
    }
  });
});
