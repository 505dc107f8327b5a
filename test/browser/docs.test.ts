// Swagger UI in a real browser (Debian chromium driven by playwright-core): /docs loads from a running
// server and lists the API's operations. .ci/run installs chromium; without it the test is skipped
// with a message.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, stop, type ServerProcess } from '../e2e/server-helper.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const hasChromium = existsSync(CHROMIUM);
if (!hasChromium) console.warn(`${CHROMIUM} not found: the Swagger UI browser test is skipped (apt-get install chromium)`);

let server: ServerProcess | undefined;
let dbDir = '';
beforeAll(async () => {
  if (!hasChromium) return;
  dbDir = await mkdtemp(join(tmpdir(), 'fuss-browser-'));
  server = await startServer({}, ['--db-dir', dbDir]);
});
afterAll(async () => {
  if (server) await stop(server.child);
  if (dbDir) await rm(dbDir, { recursive: true, force: true });
});

describe.skipIf(!hasChromium)('Swagger UI', () => {
  it('shows the operations of the API at /docs', async () => {
    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    try {
      const page = await browser.newPage();
      await page.goto(`${server!.url}/docs`);
      await page.waitForSelector('.opblock', { timeout: 20_000 });
      const summaries = await page.$$eval('.opblock-summary-path', (nodes) => nodes.map((n) => n.textContent?.replace(/\u200b/g, '').trim()));
      for (const path of ['/v1/federations', '/v1/federations/{federationId}/rounds/current/join', '/v1/federations/{federationId}/rounds/{number}/update', '/segment', '/healthz']) {
        expect(summaries).toContain(path);
      }
      expect(await page.title()).toMatch(/Swagger UI/);
    } finally {
      await browser.close();
    }
  });
});
