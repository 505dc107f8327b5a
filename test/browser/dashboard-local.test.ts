// The dashboard of a local server without FUSS_ADMIN_TOKEN (the README's quick start) in a real
// browser: it opens as the admin without a token, the creation form applies the API's schema before
// sending and shows the server's own refusals, and the participant buttons enrol (token shown once),
// rotate and revoke, each token then working or refused as it should. Screenshots go to
// test/browser/out/.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { startServer, stop, type ServerProcess } from '../e2e/server-helper.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const hasChromium = existsSync(CHROMIUM);
const OUT = fileURLToPath(new URL('./out/', import.meta.url));
const WAIT = { timeout: 30_000 };

let dir = '';
let server: ServerProcess;
let browser: Browser;
let page: Page;
const problems: string[] = [];

beforeAll(async () => {
  if (!hasChromium) return;
  await mkdir(OUT, { recursive: true });
  dir = await mkdtemp(join(tmpdir(), 'fuss-dashboard-local-'));
  server = await startServer({ FUSS_ADMIN_TOKEN: '' }, ['--db-dir', join(dir, 'db')]);
  const { chromium } = await import('playwright-core');
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  page = await browser.newPage({ viewport: { width: 1360, height: 900 } });
  page.on('console', (message) => { if (message.type() === 'error') problems.push(`console: ${message.text()}`); });
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('dialog', (dialog) => void dialog.accept());
}, 90_000);

afterAll(async () => {
  await browser?.close();
  if (server) await stop(server.child);
  if (dir) await rm(dir, { recursive: true, force: true });
});

const me = (token: string) => fetch(`${server.url}/v1/participants/me`, { headers: { authorization: `Bearer ${token}` } });

describe.skipIf(!hasChromium)('the dashboard of a local server without admin token', () => {
  it('opens as the admin, and the creation form checks the schema, then shows what the server refuses', async () => {
    await page.goto(`${server.url}/`);
    await page.waitForSelector('[data-testid=identity]', WAIT);
    expect(await page.textContent('[data-testid=identity]')).toMatch(/^admin \(local server/);
    await page.click('text=New federation');
    await page.waitForSelector('[data-testid=create-federation] input[name="backbone.sha256"]', WAIT);
    await page.fill('input[name=name]', 'made-in-the-browser');
    await page.fill('input[name=k]', '0');
    await page.fill('input[name="backbone.channels"]', '99999');
    await page.click('[data-testid=create-federation] button[type=submit]');
    expect(await page.textContent('label[for=field-k] .field-error')).toBe('must be at least 1');
    expect(await page.textContent('label[for=field-backbone-channels] .field-error')).toBe('must be at most 16384');
    expect(await page.textContent('label[for=field-rounds] .field-error')).toBe('required');
    expect(await page.textContent('label[for=field-backbone-sha256] .field-error')).toBe('required');
    // Nothing was sent.
    expect(((await (await fetch(`${server.url}/v1/federations`)).json()) as { federations: unknown[] }).federations).toEqual([]);

    const values: Record<string, string> = {
      k: '4', 'backbone.id': 'tiny', 'backbone.sha256': 'e'.repeat(64), 'backbone.featureKey': 'key1', 'backbone.channels': '8', codeDim: '4',
      rounds: '2', localSteps: '3', maxParticipants: '2', minParticipants: '3',
    };
    for (const [name, value] of Object.entries(values)) await page.fill(`input[name="${name}"]`, value);
    await page.selectOption('select[name=strategy]', 'fedavg');
    await page.click('[data-testid=create-federation] button[type=submit]');
    await page.waitForSelector('[data-testid=create-federation] .error', WAIT);
    expect(await page.textContent('[data-testid=create-federation] .error')).toMatch(/minParticipants \(3\) exceeds maxParticipants \(2\)/);
    await page.screenshot({ path: join(OUT, 'local-create-form.png'), fullPage: true });
    // That refusal is an expected 400, which chromium logs as a failed resource load.
    problems.splice(0, problems.length, ...problems.filter((p) => !/status of 400 \(Bad Request\)/.test(p)));

    await page.fill('input[name=minParticipants]', '1');
    await page.click('[data-testid=create-federation] button[type=submit]');
    await page.waitForSelector('[data-testid=timeline] li[data-round="1"][data-state=open]', WAIT);
    expect(await page.textContent('[data-testid=federation-name]')).toBe('made-in-the-browser');
    expect(await page.textContent('#configuration')).toMatch(/fedavg/);
  });

  it('enrols a participant (token shown once), rotates its token and revokes it', async () => {
    await page.fill('input[name=participant-name]', 'site <a>');
    await page.click('#participants button[type=submit]');
    await page.waitForSelector('[data-testid=new-token]', WAIT);
    const first = (await page.textContent('[data-testid=new-token]'))!;
    expect(first).toMatch(/^fuss_p_/);
    expect((await me(first)).status).toBe(200);
    await page.click('text=Done');
    await page.waitForSelector('tr[data-participant="site <a>"]', WAIT);

    await page.click('tr[data-participant="site <a>"] >> text=Rotate token');
    await page.waitForSelector('[data-testid=new-token]', WAIT);
    const second = (await page.textContent('[data-testid=new-token]'))!;
    expect(second).not.toBe(first);
    expect((await me(first)).status).toBe(401);
    expect((await me(second)).status).toBe(200);
    await page.click('text=Done');

    await page.click('tr[data-participant="site <a>"] >> text=Revoke');
    await page.waitForSelector('tr[data-participant="site <a>"].revoked', WAIT);
    expect(await page.textContent('tr[data-participant="site <a>"]')).toMatch(/revoked/);
    expect((await me(second)).status).toBe(401);
    await page.screenshot({ path: join(OUT, 'local-participants.png'), fullPage: true });
  });

  it('logged no error', () => {
    expect(problems).toEqual([]);
  });
});
