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
  };
}
