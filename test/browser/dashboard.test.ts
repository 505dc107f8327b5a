// The dashboard at / in a real browser (Debian chromium driven by playwright-core) against a real
// `fuss server --backbone --eval-data` process: sign-in through the fragment, the federation list, a
// federation's page, live updates while a small federation aggregates over HTTP (synthetic updates),
// server-side validation charted per version, the image drop, renaming a class, and a participant
// token that sees only its own federation. Every request stays on the server (no CDN), no URL carries
// a token, and the pages log no console error (CSP violations included). Screenshots of each page go to test/browser/out/ (ignored by git) for a person to look at.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { Backbone, createRng, encodeModel, featureConfigKey, initCentroids, initHead } from '@fuss/core';
import { buildTinyCnn } from '../../services/core/src/test-support/tiny-backbones.js';
import { makeTinyDataset } from '../../services/core/src/test-support/fixtures.js';
import { ADMIN, adminHeaders, startServer, stop, waitForRoundClosed, type ServerProcess } from '../e2e/server-helper.js';

// Functions passed to page.evaluate run in the browser; this project type-checks without the DOM
// library, so the few browser types they use are declared here.
declare const DataTransfer: { new (): { items: { add(file: File): void } } };
type ImageElement = { complete: boolean; naturalWidth: number; naturalHeight: number; onload: (() => void) | null };

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const hasChromium = existsSync(CHROMIUM);
if (!hasChromium) console.warn(`${CHROMIUM} not found: the dashboard browser test is skipped (apt-get install chromium)`);
const OUT = fileURLToPath(new URL('./out/', import.meta.url));
const NAME = 'road-scenes';
/** Another federation, whose name holds markup: it must show as text, never become elements. */
const OTHER = 'lab <img src=x onerror="window.__xss=1"> & co';
const WAIT = { timeout: 30_000 };

let dir = '';
let server: ServerProcess;
let browser: Browser;
let backbone: { sha256: string; featureKey: string };
let federationId = '';
const tokens: string[] = [];
const problems: string[] = [];
const requested: string[] = [];

async function api<T>(path: string, init: RequestInit = {}): Promise<T> {
  const response = await fetch(`${server.url}${path}`, { ...init, headers: { ...adminHeaders, ...(init.headers as Record<string, string>) } });
  expect(response.ok, `${path}: ${response.status}`).toBe(true);
  return (await response.json()) as T;
}

function update(seed: number, round: number): Buffer {
  const rng = createRng(seed);
  return Buffer.from(encodeModel({ head: initHead({ channels: 8, codeDim: 4 }, rng), centroids: initCentroids(3, 4, rng), channels: 8, codeDim: 4, k: 3, backbone: { id: 'tiny-cnn', ...backbone }, round, version: round - 1 }));
}

async function upload(round: number, participant: number) {
  const metrics = JSON.stringify({ loss: 2 - round * 0.3 - participant * 0.1, clusterEntropy: 0.9 + participant * 0.05, steps: 5, trainSeconds: 1.5 });
  const r = await fetch(`${server.url}/v1/federations/${federationId}/rounds/${round}/update?samples=${20 + participant}&metrics=${encodeURIComponent(metrics)}`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${tokens[participant]}`, 'content-type': 'application/octet-stream' },
    body: update(round * 10 + participant, round),
  });
  expect(r.status).toBe(201);
}

/** A page that records console errors, page errors and every URL it requests. */
async function open(context: BrowserContext, label: string): Promise<Page> {
  const page = await context.newPage();
  page.on('console', (message) => { if (message.type() === 'error') problems.push(`${label}: console: ${message.text()}`); });
  page.on('pageerror', (error) => problems.push(`${label}: page error: ${error.message}`));
  page.on('request', (request) => requested.push(request.url()));
  return page;
}

const shot = (page: Page, name: string) => page.screenshot({ path: join(OUT, `${name}.png`), fullPage: true });

beforeAll(async () => {
  if (!hasChromium) return;
  await mkdir(OUT, { recursive: true });
  dir = await mkdtemp(join(tmpdir(), 'fuss-dashboard-'));
  const modelPath = join(dir, 'tiny-cnn.onnx');
  await writeFile(modelPath, buildTinyCnn());
  const opened = await Backbone.open(modelPath);
  backbone = { sha256: opened.descriptor.sha256, featureKey: featureConfigKey(opened.descriptor) };
  await opened.close();
  // A tiny labelled dataset for server-side validation.
  const evalDir = join(dir, 'eval-data');
  await makeTinyDataset(evalDir, { images: 3 });
  server = await startServer({}, ['--db-dir', join(dir, 'db'), '--backbone', modelPath, '--eval-data', evalDir]);
  const definition = { backbone: { id: 'tiny-cnn', ...backbone, channels: 8 }, codeDim: 4, k: 3, rounds: 3, localSteps: 5, maxParticipants: 2, strategy: 'fedcc-kmeans' };
  await api('/v1/federations', { method: 'POST', body: JSON.stringify({ ...definition, name: OTHER }) });
  federationId = (await api<{ id: string }>('/v1/federations', { method: 'POST', body: JSON.stringify({ ...definition, name: NAME }) })).id;
  for (const name of ['site-a', 'site-b']) {
    tokens.push((await api<{ token: string }>(`/v1/federations/${federationId}/participants`, { method: 'POST', body: JSON.stringify({ name }) })).token);
  }
  const { chromium } = await import('playwright-core');
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}, 90_000);

afterAll(async () => {
  await browser?.close();
  if (server) await stop(server.child);
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe.skipIf(!hasChromium)('the dashboard in a browser', () => {
  let admin: BrowserContext;
  let page: Page;

  it('is the page at /, and refuses a wrong token with a message', async () => {
    const context = await browser.newContext();
    const first = await open(context, 'sign-in');
    const response = await first.goto(`${server.url}/`);
    expect(response?.headers()['content-security-policy']).toMatch(/script-src 'self'/);
    await first.waitForSelector('input[name=token]', WAIT);
    expect(await first.title()).toBe('FUSS dashboard');
    await first.fill('input[name=token]', 'not-a-token-of-this-server');
    await first.click('button[type=submit]');
    await first.waitForSelector('.error', WAIT);
    expect(await first.textContent('.error')).toMatch(/not valid/);
    await shot(first, 'sign-in');
    // The failed attempt is an expected 401, which chromium logs as a failed resource load.
    problems.splice(0, problems.length, ...problems.filter((p) => !/401 \(Unauthorized\)/.test(p)));
    await context.close();
  });

  it('signs in through the fragment, forgets the fragment, and lists a federation created through the API', async () => {
    admin = await browser.newContext({ viewport: { width: 1360, height: 900 } });
    page = await open(admin, 'admin');
    await page.goto(`${server.url}/#token=${encodeURIComponent(ADMIN)}`);
    await page.waitForSelector('[data-testid=federation-list]', WAIT);
    expect(page.url()).not.toContain('token');
    expect(await page.textContent('[data-testid=identity]')).toBe('admin');
    const row = page.locator(`tr[data-federation="${federationId}"]`);
    expect(await row.locator('a').textContent()).toBe(NAME);
    expect(await row.textContent()).toMatch(/fedcc-kmeans.*active.*1 of 3.*open.*2 enrolled/);
    expect(await page.locator('tr[data-federation]').count()).toBe(2);
    expect(await page.locator('tr[data-federation] a').allTextContents()).toEqual([NAME, OTHER]);
    expect(await page.locator('[data-testid=federation-list] img').count()).toBe(0);
    expect(await page.evaluate(() => (globalThis as unknown as { __xss?: number }).__xss)).toBeUndefined();
    await shot(page, 'federations');
  });

  it("shows a federation's configuration, round 1 and its enrolled participants", async () => {
    await page.click(`tr[data-federation="${federationId}"] a`);
    await page.waitForSelector('[data-testid=timeline] li[data-round="1"][data-state=open]', WAIT);
    expect(await page.textContent('[data-testid=federation-name]')).toBe(NAME);
    expect(await page.textContent('#configuration')).toMatch(/fedcc-kmeans/);
    expect(await page.textContent('li[data-round="1"] [data-testid=round-updates]')).toMatch(/^0 of 2 updates/);
    await page.waitForSelector('[data-testid=participants] tr[data-participant=site-a]', WAIT);
    expect(await page.locator('[data-testid=participants] tr[data-participant]').count()).toBe(2);
    expect(await page.getAttribute('[data-testid=centroid-map]', 'data-versions')).toBe('1');
    expect(await page.getAttribute('[data-testid=server-chart]', 'data-points')).toBe('0');
    await shot(page, 'federation-round-1');
  });

  it('follows an aggregation while watching: timeline, charts and centroid map update', async () => {
    await upload(1, 0);
    await page.waitForSelector('li[data-round="1"] [data-testid=round-updates]:text-matches("^1 of 2")', WAIT);
    await upload(1, 1);
    await waitForRoundClosed(server.url, federationId, 1);
    await page.waitForSelector('li[data-round="1"][data-state=closed] [data-testid=aggregation-seconds]', WAIT);
    await page.waitForSelector('li[data-round="2"][data-state=open]', WAIT);
    await page.waitForSelector('[data-testid=centroid-map][data-versions="2"]', WAIT);
    await page.waitForSelector('[data-testid=server-chart][data-points="1"] canvas', WAIT);
    await page.waitForSelector('[data-testid=participant-chart][data-points="1"] canvas', WAIT);
    // Second round: the charts grow a point and the map a version.
    await upload(2, 0);
    await upload(2, 1);
    await waitForRoundClosed(server.url, federationId, 2);
    await page.waitForSelector('[data-testid=centroid-map][data-versions="3"]', WAIT);
    await page.waitForSelector('[data-testid=participant-chart][data-points="2"]', WAIT);
    await page.waitForSelector('[data-testid=server-chart][data-points="2"]', WAIT);
    expect(await page.locator('[data-testid=centroid-map] polyline').count()).toBe(3);
    // Server-side validation scores each version in the background; the chart follows.
    await page.waitForSelector('[data-testid=validation-chart][data-points="3"] canvas', { timeout: 60_000 });
    const scores = await api<{ evaluations: { version: number; mIoU: number; pixelAccuracy: number; images: number }[] }>(`/v1/federations/${federationId}/evaluations`, { headers: {} });
    expect(scores.evaluations.map((e) => e.version)).toEqual([0, 1, 2]);
    for (const e of scores.evaluations) {
      expect(e.images).toBe(3);
      expect(e.mIoU).toBeGreaterThanOrEqual(0);
      expect(e.pixelAccuracy).toBeLessThanOrEqual(100);
    }
    expect(await page.textContent('.uplot .u-legend')).toMatch(/site-a.*site-b/);
    await page.waitForSelector('[data-testid=participants] tr[data-participant=site-b] td:nth-child(5):text-is("2")', WAIT);
    await shot(page, 'federation-after-aggregation');
  });

  it('segments a dropped image into an overlay, and renames a class in place', async () => {
    // A street-like picture: sky, trees, a road with lane marks, plus some texture.
    const [width, height] = [320, 240];
    const pixels = Buffer.alloc(width * height * 3);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const noise = ((x * 7919 + y * 104729) % 23) - 11;
        const colour = y < 80 ? [110 + y, 160 + y / 2, 230] : y < 140 ? [40, 110 + ((x >> 3) % 3) * 20, 50] : (x > 150 && x < 170 && (y >> 4) % 2 === 0) ? [235, 235, 225] : [90, 90, 95];
        pixels.set(colour.map((c) => Math.max(0, Math.min(255, c + noise))), (y * width + x) * 3);
      }
    }
    const png = await sharp(pixels, { raw: { width, height, channels: 3 } }).png().toBuffer();
    const handle = await page.evaluateHandle((bytes) => {
      const transfer = new DataTransfer();
      transfer.items.add(new File([new Uint8Array(bytes)], 'street.png', { type: 'image/png' }));
      return transfer;
    }, [...png]);
    await page.dispatchEvent('[data-testid=drop-zone]', 'drop', { dataTransfer: handle });
    await page.waitForSelector('img[data-testid=overlay]', WAIT);
    const size = await page.$eval('img[data-testid=overlay]', (img) => new Promise<[number, number]>((resolve) => {
      const image = img as unknown as ImageElement;
      if (image.complete) resolve([image.naturalWidth, image.naturalHeight]);
      else image.onload = () => resolve([image.naturalWidth, image.naturalHeight]);
    }));
    // The overlay has at least the image's size (the legend panel adds to it).
    expect(size[0]).toBeGreaterThanOrEqual(width);
    expect(size[1]).toBeGreaterThanOrEqual(height);
    expect(await page.textContent('#try-it figcaption:near(img[data-testid=overlay])')).toMatch(/model version 2/);

    await page.fill('input[name=class-0]', 'sky');
    await page.click('[data-testid=classes] button[type=submit]');
    await page.waitForSelector('[data-testid=centroid-map] text:text-is("sky")', WAIT);
    const { classes } = await api<{ classes: { id: number; name: string }[] }>(`/v1/federations/${federationId}/classes`, { headers: {} });
    expect(classes).toEqual([{ id: 0, name: 'sky', colour: expect.stringMatching(/^#/) }]);
    await page.waitForSelector('#try-it .loading', { state: 'detached', timeout: 30_000 });
    await shot(page, 'federation-try-it');
  });

  it('shows a participant only its own federation, without the admin parts', async () => {
    const context = await browser.newContext({ viewport: { width: 1360, height: 900 } });
    const own = await open(context, 'participant');
    await own.goto(`${server.url}/#token=${encodeURIComponent(tokens[0])}`);
    await own.waitForSelector(`[data-federation="${federationId}"] [data-testid=timeline]`, WAIT);
    expect(await own.textContent('[data-testid=identity]')).toBe('participant site-a');
    await own.waitForSelector('[data-testid=participant-chart][data-points="2"]', WAIT);
    expect(await own.textContent('#participant-chart')).toMatch(/What you reported/);
    expect(await own.locator('#participants').count()).toBe(0);
    expect(await own.locator('[data-testid=federation-list]').count()).toBe(0);
    expect(await own.locator('input[name=class-0]').count()).toBe(0);
    // Another federation's page is not reachable with this token: the route is ignored.
    await own.goto(`${server.url}/#/federations/00000000-0000-4000-8000-000000000000`);
    await own.waitForSelector(`[data-federation="${federationId}"] [data-testid=timeline]`, WAIT);
    expect(await own.textContent('body')).not.toContain('lab <img');
    expect(await own.locator('.uplot .u-legend').first().textContent()).not.toMatch(/site-b/);
    await shot(own, 'participant');
    await context.close();
  });

  it('made every request to the server itself, never with a token in a URL, and logged no error', async () => {
    await admin.close();
    expect(requested.length).toBeGreaterThan(10);
    for (const url of requested) {
      expect(url.startsWith(server.url) || url.startsWith('blob:') || url.startsWith('data:'), url).toBe(true);
      expect(url.replace(/#.*$/, ''), url).not.toMatch(/token/i);
    }
    expect(problems).toEqual([]);
  });
});
