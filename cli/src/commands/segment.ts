import { readFile, writeFile } from 'node:fs/promises';
import { extname } from 'node:path';
import type { Command } from '../options.js';
import { UsageError } from '../options.js';
import { openApi, RETRY_OPTIONS, SERVER_OPTION } from './remote.js';

const IMAGE_TYPES: Record<string, string> = { '.png': 'image/png', '.jpg': 'image/jpeg', '.jpeg': 'image/jpeg' };

export const segmentCommand: Command = {
  name: 'segment',
  summary: "Segment an image with a federation's global model on a server; writes the mask.",
  usage: 'fuss segment --server URL --federation ID --image IMG --out MASK.png [--format png|json|overlay] [--version N]',
  options: [
    SERVER_OPTION,
    { name: 'token', type: 'string', arg: 'TOKEN', description: 'Participant or admin token', env: 'FUSS_TOKEN' },
    { name: 'federation', type: 'string', arg: 'ID', description: 'Federation id', required: true },
    { name: 'image', type: 'string', arg: 'IMG', description: 'Image to segment (PNG or JPEG)', required: true },
    { name: 'out', type: 'string', arg: 'FILE', description: 'Where to write the mask (PNG of class ids), overlay (PNG) or JSON', required: true },
    { name: 'format', type: 'string', arg: 'FORMAT', description: 'png: class ids; overlay: colours over the image; json: ids as arrays', default: 'png', choices: ['png', 'json', 'overlay'] },
    { name: 'version', type: 'integer', arg: 'N', description: 'Global model version (default: latest)', min: 0 },
    ...RETRY_OPTIONS,
  ],
  examples: ['fuss segment --server http://127.0.0.1:8080 --federation 6f1c... --image street.jpg --out street-mask.png', 'fuss segment ... --format overlay --out street-overlay.png'],
  async run(values, _positionals, io) {
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
  },
};
