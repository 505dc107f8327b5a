// A progress bar on stderr, drawn only on a terminal; elsewhere a line every 10% so logs stay short.

import type { CliIo } from './io.js';

export interface Progress {
  update(done: number, detail?: string): void;
  done(summary?: string): void;
}

export function createProgress(io: CliIo, label: string, total: number): Progress {
  const started = Date.now();
  let lastDecile = -1;
  const eta = (done: number) => {
    if (done === 0) return '';
    const seconds = ((Date.now() - started) / 1000 / done) * (total - done);
    return ` eta ${seconds < 60 ? `${seconds.toFixed(0)}s` : `${(seconds / 60).toFixed(1)}m`}`;
  };
  return {
    update(done, detail) {
      if (io.interactive) {
        const width = 28;
        const filled = total > 0 ? Math.round((done / total) * width) : width;
        const bar = '#'.repeat(filled) + '-'.repeat(width - filled);
        io.stderr(`\r${label} [${bar}] ${done}/${total}${eta(done)}${detail ? ` ${detail}` : ''}\x1b[K`);
      } else {
        const decile = total > 0 ? Math.floor((done / total) * 10) : 10;
        if (decile !== lastDecile) {
          lastDecile = decile;
          io.stderr(`${label}: ${done}/${total}${detail ? ` ${detail}` : ''}\n`);
        }
      }
    },
    done(summary) {
      const seconds = ((Date.now() - started) / 1000).toFixed(1);
      if (io.interactive) io.stderr('\r\x1b[K');
      io.stderr(`${label}: ${summary ?? 'done'} in ${seconds}s\n`);
    },
  };
}
