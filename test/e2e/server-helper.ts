// Starting and stopping real `fuss server` processes for end-to-end tests.

import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const BIN = fileURLToPath(new URL('../../cli/bin/fuss.js', import.meta.url));
export const ADMIN = 'e2e-admin-token-0123456789abcdef';

export interface ServerProcess {
  url: string;
  child: ChildProcess;
  output: () => string;
}

/**
 * Starts `fuss server --port 0` and resolves with its URL once it listens. With PROFILE_SERVER=DIR in
 * the environment, the server writes a CPU profile there when it stops (for looking into a slow test).
 */
export async function startServer(env: NodeJS.ProcessEnv, args: string[] = []): Promise<ServerProcess> {
  const profile = process.env.PROFILE_SERVER ? ['--cpu-prof', `--cpu-prof-dir=${process.env.PROFILE_SERVER}`] : [];
  const child = spawn(process.execPath, [...profile, BIN, 'server', '--port', '0', ...args], {
    env: { ...process.env, FUSS_ADMIN_TOKEN: ADMIN, DATABASE_URL: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start: ${output}`)), 30_000);
    child.stderr!.on('data', () => {
      const match = /listening on (http:\/\/\S+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
    child.on('exit', (code) => reject(new Error(`server exited with ${code}: ${output}`)));
  });
  return { url, child, output: () => output };
}

/** Stops a server with a signal and resolves with its exit code (null when killed). */
export async function stop(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
  if (child.exitCode !== null) return child.exitCode;
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.kill(signal);
  return exited;
}

export const adminHeaders = { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' };

/**
 * Waits until round `number` of a federation has closed (the final upload is answered before the
 * aggregation it starts) and returns the round history.
 */
export async function waitForRoundClosed(url: string, federationId: string, number: number, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const history = ((await (await fetch(`${url}/v1/federations/${federationId}/rounds`, { headers: adminHeaders })).json()) as { rounds: { number: number; state: string; updates: number }[] }).rounds;
    const round = history.find((r) => r.number === number);
    if (round && (round.state === 'closed' || round.state === 'failed')) return history;
    if (Date.now() > deadline) throw new Error(`round ${number} did not close: ${JSON.stringify(history)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
