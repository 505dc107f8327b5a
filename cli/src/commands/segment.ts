import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import type { CliIo } from '../io.js';
import type { Command, OptionValues } from '../options.js';
import { UsageError } from '../options.js';
import { createProgress } from '../progress.js';
import { openApi, RETRY_OPTIONS, SERVER_OPTION } from './remote.js';
import { BACKBONE_OPTIONS, openBackbone } from './shared.js';
import { readClassesFile } from './classes.js';

const IMAGE_TYPES: Record<string, string> = { '.png': 'image/png', '.jpg': 'image/jpeg', '.jpeg': 'image/jpeg' };

export const segmentCommand: Command = {
  name: 'segment',
  summary: 'Segment images with a model file (locally, no server) or with a federation\'s global model on a server; writes the masks.',
  usage:
    'fuss segment --model FILE.safetensors --backbone ONNX --image IMG|DIR --out OUT [--format png|json|overlay] [--refine crf] [--legend] [--classes FILE]\n' +
    '  fuss segment --server URL --federation ID --image IMG --out MASK.png [--format png|json|overlay] [--version N]',
  options: [
    { name: 'model', type: 'string', arg: 'FILE', description: 'Segment locally with this model (safetensors from fuss train, fuss simulate or the server)' },
    ...BACKBONE_OPTIONS.map((o) => (o.name === 'backbone' ? { ...o, required: false, description: 'With --model: the backbone it was trained on' } : o)),
    { ...SERVER_OPTION, required: false, description: 'Or segment on this aggregation server, e.g. https://fuss.example.org' },
    { name: 'token', type: 'string', arg: 'TOKEN', description: 'With --server: participant or admin token', env: 'FUSS_TOKEN' },
    { name: 'federation', type: 'string', arg: 'ID', description: 'With --server: federation id' },
    { name: 'version', type: 'integer', arg: 'N', description: 'With --server: global model version (default: latest)', min: 0 },
    { name: 'image', type: 'string', arg: 'IMG', description: 'Image to segment (PNG or JPEG); with --model also a folder of them', required: true },
    { name: 'out', type: 'string', arg: 'PATH', description: 'Where to write the mask; a folder when --image is one (one file per image)', required: true },
    { name: 'format', type: 'string', arg: 'FORMAT', description: 'png: class ids; overlay: colours over the image; json: ids and class table', default: 'png', choices: ['png', 'json', 'overlay'] },
    { name: 'refine', type: 'string', arg: 'MODE', description: 'With --model: crf refines the mask along the image\'s edges (dense CRF)', default: 'none', choices: ['none', 'crf'] },
    { name: 'legend', type: 'boolean', description: 'With --format overlay: add a legend of the classes present' },
    { name: 'classes', type: 'string', arg: 'FILE', description: 'With --model: class names and colours, JSON { "classes": [{ "id", "name", "colour"? }] } (fuss label --out writes one)' },
    ...RETRY_OPTIONS,
  ],
  examples: [
    'fuss segment --model runs/fedcc/global.safetensors --backbone mobilenetv2-int8-features.onnx --image street.jpg --out street-mask.png',
    'fuss segment --model model.safetensors --backbone backbone.onnx --image photos/ --out masks/ --format overlay --legend --refine crf',
    'fuss segment --server http://127.0.0.1:8080 --federation 6f1c... --image street.jpg --out street-mask.png',
  ],
  async run(values, _positionals, io) {
    if (values.model !== undefined) return segmentLocally(values, io);
    if (values.server === undefined || values.federation === undefined) {
      throw new UsageError('give --model FILE (with --backbone) to segment locally, or --server URL and --federation ID');
    }
    if (values.refine !== 'none') throw new UsageError('--refine applies to local segmentation (--model); the server refines with its own settings');
    return segmentOnServer(values, io);
  },
};

async function segmentLocally(values: OptionValues, io: CliIo): Promise<number> {
  if (values.backbone === undefined) throw new UsageError('--model needs --backbone, the ONNX backbone the model was trained on');
  if (values.legend && values.format !== 'overlay') throw new UsageError('--legend goes with --format overlay');
  const images = await listImages(values.image as string);
  const single = images.folder === undefined;
  const out = values.out as string;
  if (!single) await mkdir(out, { recursive: true });
  const core: typeof import('@fuss/core') = await import('@fuss/core');
  const classes = values.classes === undefined ? undefined : await readClassesFile(values.classes as string);
  const backbone = await openBackbone(values, io);
  const engine = await core.createEngine('onnx', { threads: values.threads as number });
  try {
    const path = values.model as string;
    const bytes = await readFile(path).catch((err: NodeJS.ErrnoException) => {
      throw new Error(`cannot read model ${path}: ${err.code === 'ENOENT' ? 'no such file' : err.message}`);
    });
    const model = core.decodeModel(bytes, { backboneSha256: backbone.descriptor.sha256, featureKey: core.featureConfigKey(backbone.descriptor) }, path);
    const format = values.format as import('@fuss/core').MaskFormat;
    const progress = single ? undefined : createProgress(io, 'segment', images.files.length);
    for (const [i, file] of images.files.entries()) {
      const result = await core.segmentImage({
        backbone, engine, model, format, classes, name: file,
        image: await readFile(file),
        refine: values.refine as 'none' | 'crf',
        legend: values.legend === true,
      });
      const target = single ? out : join(out, `${basename(file, extname(file))}.${format === 'json' ? 'json' : 'png'}`);
      await writeFile(target, result.body instanceof Uint8Array ? result.body : `${JSON.stringify(result.body)}\n`);
      if (single) io.stderr(`wrote ${target} (${result.width}x${result.height}, ${model.k} classes)\n`);
      progress?.update(i + 1);
    }
    progress?.done(`${images.files.length} masks in ${out}`);
    return 0;
  } finally {
    await engine.dispose();
    await backbone.close();
  }
}

async function segmentOnServer(values: OptionValues, io: CliIo): Promise<number> {
  const path = values.image as string;
  const contentType = IMAGE_TYPES[extname(path).toLowerCase()];
  if (!contentType) throw new UsageError(`--image must be a .png, .jpg or .jpeg file (got ${path})`);
  const image = await readFile(path).catch((err: NodeJS.ErrnoException) => {
    throw new Error(`cannot read ${path}: ${err.code === 'ENOENT' ? 'no such file' : err.message}`);
  });
  const api = await openApi(values, (values.token ?? io.env.FUSS_ADMIN_TOKEN) as string | undefined, (line) => io.stderr(`${line}\n`));
  try {
    const result = await api.segment({
      federation: values.federation as string,
      version: values.version as number | undefined,
      format: values.format as 'png' | 'json' | 'overlay',
      image,
      contentType,
    });
    await writeFile(values.out as string, result.bytes);
    io.stderr(`wrote ${values.out} (model version ${result.modelVersion})\n`);
    return 0;
  } finally {
    await api.close();
  }
}

/** The image files to segment: `path` itself, or the PNG and JPEG files of the folder `path`, sorted. */
async function listImages(path: string): Promise<{ files: string[]; folder?: string }> {
  const info = await stat(path).catch((err: NodeJS.ErrnoException) => {
    throw new Error(`cannot read ${path}: ${err.code === 'ENOENT' ? 'no such file or folder' : err.message}`);
  });
  if (!info.isDirectory()) {
    if (!IMAGE_TYPES[extname(path).toLowerCase()]) throw new UsageError(`--image must be a .png, .jpg or .jpeg file or a folder (got ${path})`);
    return { files: [path] };
  }
  const files = (await readdir(path)).filter((name) => IMAGE_TYPES[extname(name).toLowerCase()]).sort().map((name) => join(path, name));
  if (files.length === 0) throw new Error(`no .png, .jpg or .jpeg images in ${path}`);
  return { files, folder: path };
}
