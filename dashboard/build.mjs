// Builds the dashboard into dist/ (run by the root `prepare` and `build` scripts): one minified ES
// module and one stylesheet, bundled by esbuild with preact and uPlot, and index.html. Nothing is
// loaded from elsewhere at run time, so the dashboard works offline under a strict
// Content-Security-Policy (no inline scripts or styles).
import { build } from 'esbuild';
import { copyFile, mkdir, rm, stat } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));
const out = `${here}dist`;
await rm(out, { recursive: true, force: true });
await mkdir(out, { recursive: true });
await build({
  entryPoints: { app: `${here}src/main.tsx` },
  outdir: out,
  bundle: true,
  minify: true,
  format: 'esm',
  target: ['es2022', 'chrome110', 'firefox110', 'safari16'],
  jsx: 'automatic',
  jsxImportSource: 'preact',
  legalComments: 'none',
  logLevel: 'warning',
});
await copyFile(`${here}src/index.html`, `${out}/index.html`);
const sizes = await Promise.all(['app.js', 'app.css'].map(async (name) => `${name} ${((await stat(`${out}/${name}`)).size / 1024).toFixed(1)} KiB`));
console.log(`dashboard built in dashboard/dist: ${sizes.join(', ')}`);
