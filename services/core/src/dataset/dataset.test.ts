import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdir, rm, writeFile, copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { datasetDomains, dominantClass, domainOf, holdOutDomain, openDataset, parseDatasetInfo, readLabelMap, requireLabels } from './dataset.js';
import { makeTempDir, makeTinyDataset } from '../test-support/fixtures.js';
import { DataError } from '../errors.js';

let dir: { path: string; remove: () => Promise<void> };
beforeEach(async () => {
  dir = await makeTempDir();
  await makeTinyDataset(dir.path, { images: 4, width: 16, height: 12 });
});
afterEach(() => dir.remove());

async function firstItem() {
  const dataset = await openDataset(dir.path);
  requireLabels(dataset);
  return { dataset, item: dataset.items[0], info: dataset.info };
}

describe('openDataset', () => {
  it('lists images with labels and domains', async () => {
    const dataset = await openDataset(dir.path);
    expect(dataset.info?.classes).toEqual(['warm', 'cold']);
    expect(dataset.items.map((i) => i.id)).toEqual(['siteA_0000', 'siteA_0002', 'siteB_0001', 'siteB_0003']);
    expect(dataset.items.map((i) => i.domain)).toEqual(['siteA', 'siteA', 'siteB', 'siteB']);
    expect(dataset.items.every((i) => i.labelPath)).toBe(true);
  });

  it('accepts a plain folder of images for training', async () => {
    const dataset = await openDataset(join(dir.path, 'images'));
    expect(dataset.info).toBeUndefined();
    expect(dataset.items).toHaveLength(4);
    expect(() => requireLabels(dataset)).toThrow(/dataset.json/);
  });

  it('names the image whose label is missing', async () => {
    await rm(join(dir.path, 'labels', 'siteB_0001.png'));
    const dataset = await openDataset(dir.path);
    expect(() => requireLabels(dataset)).toThrow(/missing label for image .*siteB_0001\.png/);
  });

  it('rejects a missing folder and a folder without images', async () => {
    await expect(openDataset(join(dir.path, 'nope'))).rejects.toThrow(/does not exist/);
    await mkdir(join(dir.path, 'empty'));
    await expect(openDataset(join(dir.path, 'empty'))).rejects.toThrow(/no .jpg or .png images/);
  });

  it('rejects a bad dataset.json naming the file and field', async () => {
    const bad = async (content: string, pattern: RegExp) => {
      await writeFile(join(dir.path, 'dataset.json'), content);
      await expect(openDataset(dir.path)).rejects.toThrow(pattern);
    };
    await bad('{not json', /dataset\.json: not valid JSON/);
    await bad('[]', /must be a JSON object/);
    await bad('{"name":"x","classes":[],"ignoreIndex":255}', /"classes" must be a non-empty array/);
    await bad('{"name":"x","classes":["a","a"],"ignoreIndex":255}', /duplicate/);
    await bad('{"name":"x","classes":["a"],"ignoreIndex":300}', /"ignoreIndex" must be an integer in 0..255/);
    await bad('{"name":"x","classes":["a","b"],"ignoreIndex":1}', /is also a class id/);
    await bad('{"name":"x","classes":["a"],"ignoreIndex":255,"domainPattern":"(["}', /not a valid regular expression/);
    await bad('{"classes":["a"],"ignoreIndex":255}', /"name"/);
  });
});

describe('readLabelMap', () => {
  it('reads class ids and finds the dominant class', async () => {
    const { item, info } = await firstItem();
    const label = await readLabelMap(item, info);
    expect([label.width, label.height]).toEqual([16, 12]);
    expect(new Set(label.data)).toEqual(new Set([0, 1, 2]));
    expect(dominantClass(label, info)).toBe(1); // the first image splits at 30%: mostly "cold"
  });

  it('names the label whose size differs from its image', async () => {
    const { item, info } = await firstItem();
    await sharp(Buffer.alloc(10 * 10), { raw: { width: 10, height: 10, channels: 1 } }).toColourspace('b-w').png().toFile(item.labelPath!);
    await expect(readLabelMap(item, info)).rejects.toThrow(/label .*siteA_0000\.png is 10x10 but its image .* is 16x12/);
  });

  it('names the label with values outside the classes', async () => {
    const { item, info } = await firstItem();
    const data = Buffer.alloc(16 * 12);
    data[5 * 16 + 3] = 7;
    await sharp(data, { raw: { width: 16, height: 12, channels: 1 } }).toColourspace('b-w').png().toFile(item.labelPath!);
    await expect(readLabelMap(item, info)).rejects.toThrow(/siteA_0000\.png has value 7 at pixel \(3, 5\), outside classes 0..1/);
  });

  it('rejects colour labels, unreadable labels and unreadable images', async () => {
    const { item, info } = await firstItem();
    await copyFile(item.imagePath, item.labelPath!);
    await expect(readLabelMap(item, info)).rejects.toThrow(/3 channels/);
    await writeFile(item.labelPath!, 'not a png');
    await expect(readLabelMap(item, info)).rejects.toThrow(/cannot read label .*siteA_0000\.png/);
    await writeFile(item.imagePath, 'not an image');
    await expect(readLabelMap(item, info)).rejects.toThrow(DataError);
    await expect(readLabelMap(item, info)).rejects.toThrow(/cannot read image .*siteA_0000\.png/);
  });
});

describe('dataset.json helpers', () => {
  it('reads the domain from the first capture group or the whole match', () => {
    expect(domainOf('0001TP_006690.jpg', '^([^_]+)_')).toBe('0001TP');
    expect(domainOf('city-aachen-1.png', '^city-[a-z]+')).toBe('city-aachen');
    expect(domainOf('x.png', '^([^_]+)_')).toBeUndefined();
  });

  it('parses the CamVid dataset.json shape', () => {
    const info = parseDatasetInfo('{"name":"camvid","classes":["sky","road"],"ignoreIndex":11,"domainPattern":"^([^_]+)_"}', 'dataset.json');
    expect(info).toEqual({ name: 'camvid', classes: ['sky', 'road'], ignoreIndex: 11, domainPattern: '^([^_]+)_' });
  });
});

describe('holdOutDomain (unseen-domain protocol)', () => {
  it('trains without the domain and evaluates on its images of the evaluation set, else of the training set', async () => {
    const root = await makeTempDir();
    try {
      await makeTinyDataset(join(root.path, 'train'), { images: 9, width: 16, height: 12, domains: ['seqA', 'seqB', 'seqC'] });
      await makeTinyDataset(join(root.path, 'val'), { images: 2, width: 16, height: 12, domains: ['seqC'] });
      const train = await openDataset(join(root.path, 'train'));
      const val = await openDataset(join(root.path, 'val'));
      expect(datasetDomains(train)).toEqual(['seqA', 'seqB', 'seqC']);

      // seqC is in val: evaluation comes from val, and seqC's training images are left out.
      const c = holdOutDomain(train, val, 'seqC');
      expect(c.evaluationFrom).toBe('evaluation');
      expect(c.evaluation.items.map((i) => i.id)).toEqual(val.items.map((i) => i.id));
      expect(datasetDomains(c.train)).toEqual(['seqA', 'seqB']);
      expect(c.train.items).toHaveLength(6);

      // seqA exists only in train: its training images become the evaluation set and nothing else.
      const a = holdOutDomain(train, val, 'seqA');
      expect(a.evaluationFrom).toBe('train');
      expect(a.evaluation.items.map((i) => i.domain)).toEqual(['seqA', 'seqA', 'seqA']);
      const trainIds = new Set(a.train.items.map((i) => i.id));
      expect(a.evaluation.items.some((i) => trainIds.has(i.id))).toBe(false);
      expect(a.train.items).toHaveLength(6);
      expect(a.evaluation.info).toEqual(train.info);
    } finally {
      await root.remove();
    }
  });

  it('names an unknown domain, a dataset with one domain, and images without a domain', async () => {
    const dataset = await openDataset(dir.path);
    expect(() => holdOutDomain(dataset, undefined, 'siteZ')).toThrow(/"siteZ" is not one of .*siteA, siteB/);
    const single = { ...dataset, items: dataset.items.filter((i) => i.domain === 'siteA') };
    expect(() => holdOutDomain(single, undefined, 'siteA')).toThrow(/leaves no domain/);
    const unnamed = { ...dataset, items: dataset.items.map(({ domain: _domain, ...item }) => item) };
    expect(() => holdOutDomain(unnamed, undefined, 'siteA')).toThrow(DataError);
  });
});
