// `fuss server --eval-data DIR` (server-side validation) refuses to start, with one readable line,
// when it cannot work: without --backbone, or on a dataset whose labels are missing or unreadable.
// (test/browser/dashboard.test.ts runs it on a good dataset and charts the scores.)

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildTinyCnn } from '../../services/core/src/test-support/tiny-backbones.js';
import { makeTinyDataset } from '../../services/core/src/test-support/fixtures.js';
import { startServer } from './server-helper.js';

let dir = '';
let modelPath = '';

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fuss-e2e-validation-'));
  modelPath = join(dir, 'tiny-cnn.onnx');
  await writeFile(modelPath, buildTinyCnn());
  await makeTinyDataset(join(dir, 'unlabelled'), { images: 2, labels: false });
  await makeTinyDataset(join(dir, 'broken'), { images: 2 });
  // A label that is not an image.
  await writeFile(join(dir, 'broken', 'labels', 'siteA_0000.png'), 'not a png');
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('fuss server --eval-data', () => {
  it('needs --backbone', async () => {
    await expect(startServer({}, ['--db-dir', join(dir, 'db1'), '--eval-data', join(dir, 'broken')])).rejects.toThrow(/exited with 1[\s\S]*--eval-data needs --backbone/);
  });

  it('refuses a dataset without labels, or with a label it cannot read, naming the file', async () => {
    await expect(startServer({}, ['--db-dir', join(dir, 'db2'), '--backbone', modelPath, '--eval-data', join(dir, 'unlabelled')])).rejects.toThrow(/exited with 1[\s\S]*missing|exited with 1[\s\S]*dataset\.json/);
    await expect(startServer({}, ['--db-dir', join(dir, 'db3'), '--backbone', modelPath, '--eval-data', join(dir, 'broken')])).rejects.toThrow(/exited with 1[\s\S]*siteA_0000\.png/);
    await expect(startServer({}, ['--db-dir', join(dir, 'db4'), '--backbone', modelPath, '--eval-data', join(dir, 'nowhere')])).rejects.toThrow(/exited with 1[\s\S]*does not exist/);
  });
});
