import type { Command } from '../options.js';
import { UsageError } from '../options.js';

export const backbonePullCommand: Command = {
  name: 'backbone pull',
  summary: 'Download a DINO backbone (ONNX export from the Hugging Face hub) and write its descriptor.',
  usage: 'fuss backbone pull dino-vits8|dino-vits16|dino-vitb8|dino-vitb16 [--models DIR]',
  options: [
    { name: 'models', type: 'string', arg: 'DIR', description: 'Folder for models and descriptors', default: 'models', env: 'FUSS_MODELS' },
    { name: 'hub-url', type: 'string', arg: 'URL', description: 'Hub base URL or mirror', default: 'https://huggingface.co', env: 'HF_ENDPOINT' },
    { name: 'force', type: 'boolean', description: 'Download again even if a verified copy exists' },
    { name: 'json', type: 'boolean', description: 'Print the result as JSON on stdout' },
  ],
  examples: ['fuss backbone pull dino-vits8', 'fuss backbone pull dino-vitb8 --models /srv/models --hub-url https://hf-mirror.example'],
  async run(values, positionals, io) {
    const core = await import('@fuss/core');
    const name = positionals[0];
    if (!name) throw new UsageError(`name a backbone: ${Object.keys(core.HUB_BACKBONES).join(', ')}`);
    if (positionals.length > 1) throw new UsageError(`unexpected arguments: ${positionals.slice(1).join(' ')}`);
    if (!core.HUB_BACKBONES[name]) throw new UsageError(`unknown backbone "${name}"; known: ${Object.keys(core.HUB_BACKBONES).join(', ')}`);
    let lastDrawn = 0;
    const result = await core.pullBackbone(name, {
      modelsDir: values.models as string,
      hubUrl: values['hub-url'] as string,
      force: Boolean(values.force),
      onProgress: (received, total) => {
        const now = Date.now();
        if (now - lastDrawn < 250 && received !== total) return;
        lastDrawn = now;
        const mb = (n: number) => (n / 1e6).toFixed(1);
        const text = total ? `${mb(received)}/${mb(total)} MB (${((received / total) * 100).toFixed(0)}%)` : `${mb(received)} MB`;
        io.stderr(io.interactive ? `\rdownloading ${name}: ${text}\x1b[K` : `downloading ${name}: ${text}\n`);
      },
    });
    if (io.interactive && result.downloaded) io.stderr('\n');
    if (values.json) io.stdout(`${JSON.stringify(result)}\n`);
    else io.stdout(`${result.downloaded ? 'downloaded' : 'already present'}: ${result.modelPath} (${(result.bytes / 1e6).toFixed(1)} MB, sha256 ${result.sha256.slice(0, 12)}...)\ndescriptor: ${result.descriptorPath}\n`);
    return 0;
  },
};
