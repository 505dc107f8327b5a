// The committed client in src/generated/ is what openapi-ts.config.ts generates from the OpenAPI
// document as it stands: regenerate into a temporary folder and compare file by file.

import { afterAll, describe, expect, it } from 'vitest';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createClient } from '@hey-api/openapi-ts';

const CONFIG = fileURLToPath(new URL('../openapi-ts.config.ts', import.meta.url));
const COMMITTED = fileURLToPath(new URL('./generated', import.meta.url));

const dirs: string[] = [];
afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

async function files(root: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const entry of await readdir(root, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    out.set(relative(root, path), await readFile(path, 'utf8'));
  }
  return out;
}

describe('the generated client', () => {
  it('matches what openapi/openapi.json generates now', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fuss-client-gen-'));
    dirs.push(dir);
    // Same config file as `npm run generate:client`, only the output folder differs.
    await createClient({ configFile: CONFIG, output: { path: dir }, logs: { file: false, level: 'silent' } } as Parameters<typeof createClient>[0]);
    const expected = await files(dir);
    const committed = await files(COMMITTED);
    expect(expected.size, 'the generator wrote nothing').toBeGreaterThan(0);
    const stale = [...new Set([...expected.keys(), ...committed.keys()])].filter((name) => expected.get(name) !== committed.get(name)).sort();
    expect(stale, `client-sdk/src/generated/ is out of date with openapi/openapi.json (${stale.join(', ')}): run \`npm run generate:client\``).toEqual([]);
  });
});
