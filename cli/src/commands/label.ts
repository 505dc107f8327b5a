// `fuss label`: proposes names for a model's classes from a few labelled images (the clusters are
// matched to the dataset's classes as the evaluation matches them), shows them, and writes them to
// the federation on the server and/or to a classes file once confirmed.

import { readFile, writeFile } from 'node:fs/promises';
import type { Command } from '../options.js';
import { UsageError } from '../options.js';
import { createProgress } from '../progress.js';
import { ADMIN_TOKEN_OPTION, openApi, RETRY_OPTIONS, SERVER_OPTION } from './remote.js';
import { BACKBONE_OPTIONS, cacheDirOf, openBackbone } from './shared.js';
import { printClasses } from './classes.js';

export const labelCommand: Command = {
  name: 'label',
  summary: "Propose names for a model's classes from a few labelled images, show them, and write them (server or file).",
  usage: 'fuss label --data DIR --backbone ONNX (--server URL --federation ID | --model FILE --out FILE) [--images N] [--yes] [--json]',
  options: [
    { name: 'data', type: 'string', arg: 'DIR', description: 'A few labelled images (images/, labels/, dataset.json with class names); labels serve only this matching', required: true },
    ...BACKBONE_OPTIONS,
    { ...SERVER_OPTION, required: false, description: 'Name the classes of this server\'s federation (its latest model), e.g. https://fuss.example.org' },
    ADMIN_TOKEN_OPTION,
    { name: 'federation', type: 'string', arg: 'ID', description: 'With --server: federation id' },
    { name: 'model', type: 'string', arg: 'FILE', description: 'Name the classes of this model file instead of the federation\'s latest' },
    { name: 'out', type: 'string', arg: 'FILE', description: 'Also write the names to this classes file (for fuss segment --classes, fuss classes set --file)' },
    { name: 'images', type: 'integer', arg: 'N', description: 'Use the first N labelled images (default: all)', min: 1 },
    { name: 'min-precision', type: 'number', arg: 'P', description: 'Write a name only when at least this share of the class\'s pixels carry that label', default: 0.1, min: 0 },
    { name: 'yes', type: 'boolean', description: 'Write without asking' },
    ...RETRY_OPTIONS,
    { name: 'json', type: 'boolean', description: 'Print the proposals as JSON' },
  ],
  examples: [
    'fuss label --server http://127.0.0.1:8080 --federation 6f1c... --data labelled-sample/ --backbone mobilenetv2-int8-features.onnx',
    'fuss label --model runs/fedcc/global.safetensors --data labelled-sample/ --backbone backbone.onnx --out classes.json --yes',
  ],
  async run(values, _positionals, io) {
    const remote = values.server !== undefined && values.federation !== undefined;
    if (!remote && values.model === undefined) throw new UsageError('give --server URL and --federation ID, or --model FILE (with --out FILE)');
    if (!remote && values.out === undefined) throw new UsageError('with --model and no server, give --out FILE to write the names to');
    const core: typeof import('@fuss/core') = await import('@fuss/core');
    const dataset = await core.openDataset(values.data as string);
    core.requireLabels(dataset);
    const limited = values.images === undefined ? dataset : { ...dataset, items: dataset.items.slice(0, values.images as number) };
    const api = remote ? await openApi(values, values['admin-token'] as string | undefined, (line) => io.stderr(`${line}\n`)) : undefined;
    const backbone = await openBackbone(values, io);
    const engine = await core.createEngine('onnx', { threads: values.threads as number });
    try {
      const what = values.model !== undefined ? (values.model as string) : `federation ${values.federation} (latest model)`;
      const bytes = values.model !== undefined ? await readFile(values.model as string) : await api!.downloadModel(values.federation as string, 'latest');
      const model = core.decodeModel(bytes, { backboneSha256: backbone.descriptor.sha256, featureKey: core.featureConfigKey(backbone.descriptor) }, what);
      const progress = createProgress(io, 'label', limited.items.length);
      const { proposals, images } = await core.proposeClassNames(limited, backbone, model.centroids, model.k, {
        cacheDir: cacheDirOf(values),
        codes: core.headCodeFunction(engine, model.head, model.channels, model.codeDim),
        onProgress: (done) => progress.update(done),
      });
      progress.done(`${images} labelled images`);
      const minPrecision = values['min-precision'] as number;
      const classes = proposals.filter((p) => p.name !== undefined && p.precision >= minPrecision).map((p) => ({ id: p.id, name: p.name! }));
      if (values.json) io.stdout(`${JSON.stringify({ proposals, classes })}\n`);
      else {
        io.stdout(`Proposed names for the ${model.k} classes of ${what}, from ${images} labelled images:\n`);
        io.stdout('  id  name            precision    IoU  of pixels\n');
        const total = proposals.reduce((s, p) => s + p.pixels, 0) || 1;
        for (const p of proposals) {
          const kept = p.name !== undefined && p.precision >= minPrecision;
          const name = p.name === undefined ? '(no match)' : kept ? p.name : `(${p.name}?)`;
          io.stdout(`${String(p.id).padStart(4)}  ${name.padEnd(14)} ${pct(p.precision).padStart(9)} ${pct(p.iou).padStart(6)} ${pct(p.pixels / total).padStart(10)}\n`);
        }
        io.stdout(`(in parentheses: matched, but under ${pct(minPrecision)} of the class's pixels carry that label; not written)\n`);
      }
      if (!values.yes) {
        const answer = io.ask ? await io.ask(`write these ${classes.length} names${remote ? ` to federation ${values.federation}` : ''}${values.out ? ` and ${values.out}` : ''}? [y/N] `) : '';
        if (!/^y(es)?$/i.test(answer.trim())) {
          io.stderr(io.ask ? 'not written\n' : 'not written: run again with --yes to write them\n');
          return 0;
        }
      }
      const checked = core.validateClassLabels(classes, model.k);
      if (values.out !== undefined) {
        await writeFile(values.out as string, `${JSON.stringify({ classes: checked }, null, 2)}\n`);
        io.stderr(`wrote ${values.out}\n`);
      }
      if (api) {
        const stored = await api.setClasses(values.federation as string, checked);
        io.stderr(`federation ${values.federation}: ${stored.length} classes named\n`);
        if (!values.json) printClasses(io, stored, false);
      }
      return 0;
    } finally {
      await engine.dispose();
      await backbone.close();
      await api?.close();
    }
  },
};

function pct(value: number): string {
  return `${(value * 100).toFixed(1)}%`;
}
