// Dataset folders (DESIGN section 3): images/ (jpg or png), optional labels/ (8-bit class-id PNG, same
// basename) used only for evaluation, and dataset.json { name, classes, ignoreIndex, domainPattern? }.
// A plain folder of images (no dataset.json, no images/ subfolder) is accepted for training.

import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import sharp, { type OutputInfo } from 'sharp';
import { DataError } from '../errors.js';
import { readImageSize } from '../image/image.js';

export interface DatasetInfo {
  name: string;
  classes: string[];
  ignoreIndex: number;
  /** Regular expression over the file name; its first capture group (or whole match) is the domain. */
  domainPattern?: string;
}

export interface DatasetItem {
  /** File name without extension; unique within the dataset. */
  id: string;
  imagePath: string;
  /** Present when labels/ holds a file with the same basename. */
  labelPath?: string;
  /** From `domainPattern`, when the dataset defines one and it matches. */
  domain?: string;
}

export interface Dataset {
  root: string;
  /** Undefined for a plain folder of images. */
  info?: DatasetInfo;
  items: DatasetItem[];
}

const IMAGE_EXTENSIONS = new Set(['.jpg', '.jpeg', '.png']);

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

/** Parses and checks dataset.json; errors name the file and the field. */
export function parseDatasetInfo(text: string, path: string): DatasetInfo {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new DataError(`${path}: not valid JSON (${(err as Error).message})`);
  }
  const fail = (msg: string): never => {
    throw new DataError(`${path}: ${msg}`);
  };
  if (typeof json !== 'object' || json === null || Array.isArray(json)) fail('must be a JSON object');
  const d = json as Record<string, unknown>;
  if (typeof d.name !== 'string' || d.name === '') fail('"name" must be a non-empty string');
  if (!Array.isArray(d.classes) || d.classes.length === 0 || !d.classes.every((c) => typeof c === 'string' && c !== '')) {
    fail('"classes" must be a non-empty array of class names');
  }
  const classes = d.classes as string[];
  if (new Set(classes).size !== classes.length) fail('"classes" has duplicate names');
  if (classes.length > 255) fail('"classes" has more than 255 entries (labels are 8-bit)');
  if (!Number.isInteger(d.ignoreIndex) || (d.ignoreIndex as number) < 0 || (d.ignoreIndex as number) > 255) {
    fail('"ignoreIndex" must be an integer in 0..255');
  }
  if ((d.ignoreIndex as number) < classes.length) fail(`"ignoreIndex" ${d.ignoreIndex} is also a class id (classes 0..${classes.length - 1})`);
  if (d.domainPattern !== undefined) {
    if (typeof d.domainPattern !== 'string') fail('"domainPattern" must be a string');
    try {
      new RegExp(d.domainPattern as string);
    } catch (err) {
      fail(`"domainPattern" is not a valid regular expression (${(err as Error).message})`);
    }
  }
  return {
    name: d.name as string,
    classes,
    ignoreIndex: d.ignoreIndex as number,
    ...(d.domainPattern === undefined ? {} : { domainPattern: d.domainPattern as string }),
  };
}

/** The domain of a file name under a pattern: first capture group, else the whole match. */
export function domainOf(fileName: string, pattern: string): string | undefined {
  const match = new RegExp(pattern).exec(fileName);
  if (!match) return undefined;
  return match[1] ?? match[0];
}

/**
 * Lists a dataset folder. Only names and paths are read here; images and labels are checked when
 * read (`readLabelMap`, `checkDataset`).
 */
export async function openDataset(root: string): Promise<Dataset> {
  if (!(await isDirectory(root))) throw new DataError(`dataset folder ${root} does not exist or is not a folder`);
  const infoPath = join(root, 'dataset.json');
  let info: DatasetInfo | undefined;
  try {
    info = parseDatasetInfo(await readFile(infoPath, 'utf8'), infoPath);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const imagesDir = (await isDirectory(join(root, 'images'))) ? join(root, 'images') : root;
  const labelsDir = join(root, 'labels');
  const hasLabels = await isDirectory(labelsDir);
  const labelFiles = new Set(hasLabels ? (await readdir(labelsDir)).filter((f) => extname(f).toLowerCase() === '.png') : []);
  const files = (await readdir(imagesDir)).filter((f) => IMAGE_EXTENSIONS.has(extname(f).toLowerCase())).sort();
  if (files.length === 0) throw new DataError(`no .jpg or .png images in ${imagesDir}`);
  const seen = new Map<string, string>();
  const items = files.map((file): DatasetItem => {
    const id = basename(file, extname(file));
    const previous = seen.get(id);
    if (previous) throw new DataError(`images ${previous} and ${file} in ${imagesDir} share the basename "${id}"`);
    seen.set(id, file);
    const labelFile = `${id}.png`;
    const domain = info?.domainPattern ? domainOf(file, info.domainPattern) : undefined;
    return {
      id,
      imagePath: join(imagesDir, file),
      ...(labelFiles.has(labelFile) ? { labelPath: join(labelsDir, labelFile) } : {}),
      ...(domain === undefined ? {} : { domain }),
    };
  });
  return { root, ...(info ? { info } : {}), items };
}

/** Throws unless the dataset has dataset.json and a label for every image. */
export function requireLabels(dataset: Dataset): asserts dataset is Dataset & { info: DatasetInfo } {
  if (!dataset.info) throw new DataError(`${join(dataset.root, 'dataset.json')} is missing: evaluation needs class names and the ignore index`);
  const missing = dataset.items.find((item) => !item.labelPath);
  if (missing) throw new DataError(`missing label for image ${missing.imagePath}: expected ${join(dataset.root, 'labels', `${missing.id}.png`)}`);
}

export interface LabelMap {
  width: number;
  height: number;
  /** [height, width] class ids; `ignoreIndex` marks unlabelled pixels. */
  data: Uint8Array;
}

/**
 * Reads a label PNG and checks it against its image size and the class range. Errors name the file.
 */
export async function readLabelMap(item: DatasetItem, info: DatasetInfo, imageSize?: { width: number; height: number }): Promise<LabelMap> {
  if (!item.labelPath) throw new DataError(`missing label for image ${item.imagePath}`);
  const size = imageSize ?? (await readImageSize(item.imagePath));
  let decoded: { data: Buffer; info: OutputInfo };
  try {
    const meta = await sharp(item.labelPath).metadata();
    // A palette PNG would decode to colours, not class ids.
    if (meta.isPalette) throw new Error('it is a palette PNG; save class ids as 8-bit grayscale');
    if (meta.channels !== 1) throw new Error(`it has ${meta.channels} channels; save class ids as 8-bit grayscale`);
    decoded = await sharp(item.labelPath).extractChannel(0).raw().toBuffer({ resolveWithObject: true });
  } catch (err) {
    throw new DataError(`cannot read label ${item.labelPath}: ${(err as Error).message}`, { cause: err });
  }
  const { width, height } = decoded.info;
  if (width !== size.width || height !== size.height) {
    throw new DataError(`label ${item.labelPath} is ${width}x${height} but its image ${item.imagePath} is ${size.width}x${size.height}`);
  }
  const data = new Uint8Array(decoded.data.buffer, decoded.data.byteOffset, width * height);
  const classes = info.classes.length;
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (v >= classes && v !== info.ignoreIndex) {
      throw new DataError(
        `label ${item.labelPath} has value ${v} at pixel (${i % width}, ${Math.floor(i / width)}), outside classes 0..${classes - 1} and not the ignore index ${info.ignoreIndex}`,
      );
    }
  }
  return { width, height, data };
}

/** The most frequent non-ignored class of a label map (for the Dirichlet partition), or -1. */
export function dominantClass(label: LabelMap, info: DatasetInfo): number {
  const counts = new Float64Array(info.classes.length);
  for (let i = 0; i < label.data.length; i++) {
    const v = label.data[i];
    if (v !== info.ignoreIndex) counts[v]++;
  }
  let best = -1;
  for (let c = 0; c < counts.length; c++) if (counts[c] > 0 && (best < 0 || counts[c] > counts[best])) best = c;
  return best;
}

/** The domains of a dataset's items, sorted by name (items without a domain are not counted). */
export function datasetDomains(dataset: Dataset): string[] {
  return [...new Set(dataset.items.map((item) => item.domain).filter((d): d is string => d !== undefined))].sort();
}

/** The dataset with only the items `keep` accepts (same root and dataset.json). */
export function filterDataset(dataset: Dataset, keep: (item: DatasetItem) => boolean): Dataset {
  return { ...dataset, items: dataset.items.filter(keep) };
}

/** The two datasets of the unseen-domain protocol (see {@link holdOutDomain}). */
export interface HeldOutDomainSplit {
  domain: string;
  /** The training items of every other domain. */
  train: Dataset;
  /** The held-out domain's items: from the evaluation dataset when it has any, else from the training one. */
  evaluation: Dataset;
  /** Where `evaluation` came from. */
  evaluationFrom: 'evaluation' | 'train';
}

/**
 * The unseen-domain protocol: the federation trains on `train` without `domain`'s images and is
 * evaluated on `domain`'s images of `evaluation` when that dataset has any (CamVid: 0016E5 is
 * camvid/val), else on `domain`'s images of `train`, which then take no part in training (CamVid:
 * 0001TP and 0006R0 exist only in camvid/train). Domains come from the datasets' `domainPattern`.
 *
 * @throws DataError when a training image has no domain, `domain` is not one of `train`'s, or no
 *   other domain is left to train on
 */
export function holdOutDomain(train: Dataset, evaluation: Dataset | undefined, domain: string): HeldOutDomainSplit {
  const unnamed = train.items.find((item) => item.domain === undefined);
  if (unnamed) throw new DataError(`holding out a domain needs a domain for every image, but ${unnamed.imagePath} has none (check the domainPattern of ${join(train.root, 'dataset.json')})`);
  const domains = datasetDomains(train);
  if (!domains.includes(domain)) throw new DataError(`domain "${domain}" is not one of ${train.root}'s: ${domains.join(', ')}`);
  if (domains.length < 2) throw new DataError(`holding out ${domain} leaves no domain of ${train.root} to train on`);
  const fromEvaluation = evaluation ? filterDataset(evaluation, (item) => item.domain === domain) : undefined;
  const evaluationFrom = fromEvaluation && fromEvaluation.items.length > 0 ? 'evaluation' : 'train';
  return {
    domain,
    train: filterDataset(train, (item) => item.domain !== domain),
    evaluation: evaluationFrom === 'evaluation' ? fromEvaluation! : filterDataset(train, (item) => item.domain === domain),
    evaluationFrom,
  };
}
