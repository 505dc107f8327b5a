// A request body that stops arriving is cut off after `idleMs` without a byte, much sooner than the
// connection's own idle timeout (which also covers waiting for a slow answer, and so must be longer).
// The socket's bytes are watched as they come (a listener beside the HTTP parser's, which takes
// nothing from it); the timer stops when the request has been read or answered.

import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';

export const bodyIdleTimeout = fp(async (app: FastifyInstance, opts: { idleMs: number }) => {
  app.addHook('onRequest', async (request, reply) => {
    const socket = request.raw.socket;
    const length = request.headers['content-length'];
    const expectsBody = request.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
    if (!expectsBody || request.raw.complete || typeof socket?.on !== 'function') return;
    const timer = setTimeout(() => socket.destroy(), opts.idleMs);
    timer.unref();
    const progress = () => timer.refresh();
    socket.on('data', progress);
    // Every listener goes when the request ends: a keep-alive socket serves many requests.
    const stop = () => {
      clearTimeout(timer);
      socket.off('data', progress);
      socket.off('close', stop);
      request.raw.off('end', stop);
      reply.raw.off('close', stop);
    };
    request.raw.once('end', stop);
    reply.raw.once('close', stop);
    socket.once('close', stop);
  });
});
