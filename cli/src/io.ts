// What a command may touch of the outside world, so tests can run commands in-process (STYLE 13).

export interface CliIo {
  /** Results (JSON with --json). */
  stdout(text: string): void;
  /** Progress, logs and errors. */
  stderr(text: string): void;
  /** True when stderr is a terminal: progress bars are drawn only then. */
  interactive: boolean;
  /** Colour allowed (terminal and NO_COLOR unset). */
  colour: boolean;
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** Asks a person a question on the terminal and resolves to the answer; absent when there is no terminal. */
  ask?: (question: string) => Promise<string>;
}

export function processIo(): CliIo {
  const interactive = Boolean(process.stderr.isTTY) && process.env.CI === undefined;
  return {
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
    interactive,
    colour: interactive && process.env.NO_COLOR === undefined,
    env: process.env,
    cwd: process.cwd(),
    ask: interactive && process.stdin.isTTY ? askOnTerminal : undefined,
  };
}

async function askOnTerminal(question: string): Promise<string> {
  const { createInterface } = await import('node:readline/promises');
  const terminal = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return await terminal.question(question);
  } finally {
    terminal.close();
  }
}
