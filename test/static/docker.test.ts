// Static checks of docker/ (no Docker engine runs on the development and CI machines): the files
// reference things that exist, set what the server needs, and the compose file parses as YAML.

import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

const root = fileURLToPath(new URL('../../', import.meta.url));
const dockerfile = readFileSync(`${root}docker/Dockerfile`, 'utf8');

describe('docker/Dockerfile', () => {
  it('copies only paths that exist and runs the server', () => {
    for (const match of dockerfile.matchAll(/^COPY (?!--from)(.+) \S+$/gm)) {
      for (const path of match[1].split(/\s+/)) expect(existsSync(`${root}${path}`), path).toBe(true);
    }
    expect(dockerfile).toMatch(/^FROM node:20/m);
    expect(dockerfile).toMatch(/ONNXRUNTIME_NODE_INSTALL=skip/);
    expect(dockerfile).toMatch(/RUN npm ci/);
    expect(dockerfile).toMatch(/^USER node$/m);
    expect(dockerfile).toMatch(/CMD \["node", "cli\/bin\/fuss.js", "server"\]/);
    expect(existsSync(`${root}cli/bin/fuss.js`)).toBe(true);
  });

  it('copies every npm workspace before `npm ci` (which fails on a workspace it cannot find)', () => {
    const copied = [...dockerfile.matchAll(/^COPY (?!--from)(.+) \S+$/gm)].flatMap((m) => m[1].split(/\s+/));
    const workspaces = (JSON.parse(readFileSync(`${root}package.json`, 'utf8')) as { workspaces: string[] }).workspaces;
    for (const workspace of workspaces) expect(copied.some((path) => workspace === path || workspace.startsWith(`${path}/`)), workspace).toBe(true);
  });
});

describe('docker/compose.yaml', () => {
  it('runs Postgres and the aggregator wired by DATABASE_URL, with an admin token', () => {
    const compose = parse(readFileSync(`${root}docker/compose.yaml`, 'utf8'));
    expect(Object.keys(compose.services).sort()).toEqual(['aggregator', 'postgres']);
    const aggregator = compose.services.aggregator;
    expect(aggregator.build).toEqual({ context: '..', dockerfile: 'docker/Dockerfile' });
    expect(aggregator.environment.DATABASE_URL).toMatch(/^postgresql:\/\/fuss:fuss@postgres:5432\/fuss$/);
    expect(aggregator.environment.FUSS_ADMIN_TOKEN).toMatch(/FUSS_ADMIN_TOKEN/);
    expect(aggregator.depends_on.postgres.condition).toBe('service_healthy');
    expect(compose.services.postgres.environment.POSTGRES_DB).toBe('fuss');
  });
});
