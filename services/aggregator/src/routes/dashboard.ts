// The web dashboard at / (the @fuss/dashboard workspace, built at install time): static files only,
// public, under a Content-Security-Policy that allows nothing but this server's own scripts, styles
// and API (no inline script, no other origin). Every piece of data comes from the token-protected API.

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import fastifyStatic from '@fastify/static';
import { FussError } from '@fuss/core';

export const DASHBOARD_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  // Overlays and the dropped image are shown from blob: URLs; the favicon is an empty data: URL.
  "img-src 'self' blob: data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

export async function dashboardRoutes(app: FastifyInstance, opts: { dir: string }) {
  if (!existsSync(join(opts.dir, 'index.html'))) {
    app.get('/', { config: { access: 'public' }, schema: { hide: true } }, async () => {
      throw new FussError(`the dashboard is not built (no ${join(opts.dir, 'index.html')}); run npm run build`, { status: 503, type: 'dashboard-not-built' });
    });
    return;
  }
  await app.register(fastifyStatic, {
    root: opts.dir,
    prefix: '/',
    // One route per built file (found at start), so unknown paths get the API's 404.
    wildcard: false,
    decorateReply: false,
    // Small files rebuilt in place: always revalidated (ETag), never served stale after an upgrade.
    cacheControl: false,
    setHeaders: (res) => {
      res.setHeader('cache-control', 'no-cache');
      res.setHeader('content-security-policy', DASHBOARD_CSP);
      res.setHeader('x-content-type-options', 'nosniff');
      res.setHeader('referrer-policy', 'no-referrer');
      res.setHeader('x-frame-options', 'DENY');
    },
  });
}
