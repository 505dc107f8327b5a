// `fuss` entry: picks the command from argv, parses its options from its table, runs it, and owns the
// exit code: 0 success, 1 failure, 2 usage error. Heavy modules load inside commands.

import { processIo, type CliIo } from './io.js';
import { parseOptions, renderHelp, UsageError, type Command } from './options.js';
import { featuresCommand } from './commands/features.js';
import { evaluateCommand } from './commands/evaluate.js';
import { backbonePullCommand } from './commands/backbone-pull.js';
import { trainCommand } from './commands/train.js';
import { simulateCommand } from './commands/simulate.js';
import { serverCommand } from './commands/server.js';
import { joinCommand } from './commands/join.js';
import { federationCreateCommand, participantAddCommand, participantListCommand, participantRevokeCommand, participantRotateCommand } from './commands/federation.js';
import { segmentCommand } from './commands/segment.js';
import { classesSetCommand, classesShowCommand } from './commands/classes.js';
import { labelCommand } from './commands/label.js';
import { doctorCommand } from './commands/doctor.js';

export const COMMANDS: Command[] = [
  serverCommand, federationCreateCommand, participantAddCommand, participantListCommand, participantRevokeCommand, participantRotateCommand, joinCommand, segmentCommand,
  classesShowCommand, classesSetCommand, labelCommand,
  featuresCommand, trainCommand, evaluateCommand, simulateCommand, backbonePullCommand, doctorCommand,
];

function topLevelHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length)) + 2;
  return [
    'fuss: federated unsupervised semantic segmentation',
    '',
    'Usage',
    '  fuss <command> [options]',
    '',
    'Commands',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}${c.summary}`),
    '',
    'Run `fuss <command> --help` for the options of a command.',
    '',
  ].join('\n');
}

/** Finds the longest command name that prefixes argv. */
function findCommand(argv: string[]): { command?: Command; rest: string[] } {
  const sorted = [...COMMANDS].sort((a, b) => b.name.split(' ').length - a.name.split(' ').length);
  for (const command of sorted) {
    const words = command.name.split(' ');
    if (words.every((w, i) => argv[i] === w)) return { command, rest: argv.slice(words.length) };
  }
  return { rest: argv };
}

export async function main(argv: string[], io: CliIo = processIo()): Promise<number> {
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
    io.stdout(topLevelHelp());
    return argv.length === 0 ? 2 : 0;
  }
  const { command, rest } = findCommand(argv);
  if (!command) {
    io.stderr(`error: unknown command "${argv.slice(0, 2).join(' ')}"\n\n${topLevelHelp()}`);
    return 2;
  }
  const debug = rest.includes('--debug') || io.env.FUSS_DEBUG === '1';
  try {
    const { values, positionals } = parseOptions(command, rest, io);
    if (values.help) {
      io.stdout(renderHelp(command));
      return 0;
    }
    return await command.run(values, positionals, io);
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr(`error: ${err.message}\n\n${renderHelp(command)}`);
      return 2;
    }
    const message = err instanceof Error ? err.message : String(err);
    io.stderr(`error: ${message}\n`);
    if (debug && err instanceof Error && err.stack) io.stderr(`${err.stack}\n`);
    return 1;
  }
}
