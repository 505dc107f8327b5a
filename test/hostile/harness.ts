// Tools for trying a real `fuss server` process the way an attacker would: raw sockets that send what
// they like and stall, a probe that keeps asking /healthz and records how long each answer took, and
// a sampler of the server's resident memory. Used by the hostile test suite and by bench/hostile.

import { connect, type Socket } from 'node:net';
import { readFile } from 'node:fs/promises';
import { Worker } from 'node:worker_threads';

export interface RawResult {
  /** Status code of the response, or undefined when none came. */
  status?: number;
  /** Milliseconds from the first byte sent until the status line arrived. */
  answeredMs?: number;
  /** Milliseconds until the server closed the connection (undefined: still open at the end). */
  closedMs?: number;
  /** Bytes of the body the client managed to send before the server answered or closed. */
  bodyBytesSent: number;
  /** The response as text (headers and start of the body), at most 64 KiB. */
  response: string;
}

export interface RawOptions {
  /** Request line and headers, without the blank line that ends them. */
  head?: string;
  /** Body bytes to send after the headers, in chunks, as fast as the socket takes them. */
  body?: Buffer;
  /** Stop sending after this many body bytes and stay silent. */
  stallAfterBytes?: number;
  /** Send only these raw bytes (the headers are then not completed). */
  rawOnly?: string;
  /** Give up waiting after this long (ms). */
  waitMs: number;
  /** Resolve as soon as the status line arrived (do not wait for the close). */
  untilAnswer?: boolean;
}

/** Sends a hand-made request over a fresh TCP connection and watches what the server does. */
export function rawRequest(url: string, options: RawOptions): Promise<RawResult> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket: Socket = connect({ host: hostname, port: Number(port) });
    const started = performance.now();
    const result: RawResult = { bodyBytesSent: 0, response: '' };
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(finish, options.waitMs);
    socket.on('data', (chunk) => {
      if (result.response.length < 65536) result.response += chunk.toString('latin1');
      const match = /^HTTP\/1\.1 (\d{3})/.exec(result.response);
      if (match && result.status === undefined) {
        result.status = Number(match[1]);
        result.answeredMs = performance.now() - started;
        if (options.untilAnswer) finish();
      }
    });
    socket.on('close', () => {
      result.closedMs = performance.now() - started;
      finish();
    });
    socket.on('error', () => undefined);
    socket.on('connect', () => {
      if (options.rawOnly !== undefined) {
        socket.write(options.rawOnly);
        return;
      }
      socket.write(`${options.head}\r\n\r\n`);
      const body = options.body ?? Buffer.alloc(0);
      const limit = Math.min(body.length, options.stallAfterBytes ?? body.length);
      let offset = 0;
      const pump = () => {
        while (offset < limit && !done && result.status === undefined) {
          const end = Math.min(limit, offset + 64 * 1024);
          const more = socket.write(body.subarray(offset, end));
          result.bodyBytesSent = end;
          offset = end;
          if (!more) {
            socket.once('drain', pump);
            return;
          }
        }
      };
      pump();
    });
  });
}

export interface ProbeReport {
  count: number;
  maxMs: number;
  p99Ms: number;
  medianMs: number;
  failures: number;
}

// Runs in its own thread, so that work of the attacking process itself (building a large body, say)
// never delays a probe: what is measured is the server alone.
const PROBE_THREAD = `
const { parentPort, workerData } = require('node:worker_threads');
const latencies = [];
let failures = 0;
let running = true;
parentPort.on('message', () => { running = false; });
(async () => {
  // One unrecorded request first: the thread's start and the connection's set-up are not the server's.
  await fetch(workerData.url + '/healthz').then((r) => r.arrayBuffer()).catch(() => undefined);
  while (running) {
    const started = performance.now();
    try {
      const response = await fetch(workerData.url + '/healthz', { signal: AbortSignal.timeout(30000) });
      await response.arrayBuffer();
      if (response.status !== 200) failures++;
    } catch {
      failures++;
    }
    latencies.push(performance.now() - started);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  parentPort.postMessage({ latencies, failures });
})();
`;

/** Asks GET /healthz one request after another (20 ms apart, from a thread of its own) until stopped. */
export class HealthProbe {
  private readonly worker: Worker;

  constructor(url: string) {
    this.worker = new Worker(PROBE_THREAD, { eval: true, workerData: { url } });
  }

  async stop(): Promise<ProbeReport> {
    const report = new Promise<{ latencies: number[]; failures: number }>((resolve) => this.worker.once('message', resolve));
    this.worker.postMessage('stop');
    const { latencies, failures } = await report;
    await this.worker.terminate();
    return summarise(latencies, failures);
  }
}

export function summarise(latencies: number[], failures = 0): ProbeReport {
  const sorted = [...latencies].sort((a, b) => a - b);
  const at = (q: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] : 0);
  return { count: sorted.length, maxMs: sorted.at(-1) ?? 0, p99Ms: at(0.99), medianMs: at(0.5), failures };
}

/** Resident memory of a process (Linux /proc), MiB. */
export async function rssMiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const match = /VmRSS:\s+(\d+) kB/.exec(status);
  return match ? Number(match[1]) / 1024 : Number.NaN;
}

/** Samples a process's resident memory every 50 ms until stopped; reports the peak (MiB). */
export class RssSampler {
  private peak = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly pid: number) {
    this.timer = setInterval(() => {
      rssMiB(pid).then((rss) => (this.peak = Math.max(this.peak, rss)), () => undefined);
    }, 50);
  }

  async stop(): Promise<number> {
    clearInterval(this.timer);
    return Math.max(this.peak, await rssMiB(this.pid));
  }
}

/** Runs `attack` while probing /healthz and sampling memory. */
export async function underWatch<T>(url: string, pid: number, attack: () => Promise<T>) {
  const before = await rssMiB(pid);
  const probe = new HealthProbe(url);
  const memory = new RssSampler(pid);
  const started = performance.now();
  const result = await attack();
  const seconds = (performance.now() - started) / 1000;
  // A little longer: work an attack leaves behind (a decode still running) shows up too.
  await new Promise((resolve) => setTimeout(resolve, 300));
  const health = await probe.stop();
  const peakMiB = await memory.stop();
  return { result, seconds, health, rssBeforeMiB: before, rssPeakMiB: peakMiB, rssAfterMiB: await rssMiB(pid) };
}
