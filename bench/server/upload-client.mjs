// The load generator of bench/server's upload rows, in a process of its own so that the server's event
// loop does not also run the clients. Reads one JSON line on stdin:
// { url, tokens: [...], concurrency, updatePath }; url is the upload URL with {token-index} left to the
// caller: every token uploads once. Prints { seconds, latencies } (ms, sorted) as one JSON line.

import { readFile } from 'node:fs/promises';

let input = '';
for await (const chunk of process.stdin) input += chunk;
const { url, tokens, concurrency, updatePath } = JSON.parse(input);
const update = await readFile(updatePath);
const latencies = [];
let next = 0;
const started = performance.now();
await Promise.all(Array.from({ length: concurrency }, async () => {
  while (next < tokens.length) {
    const i = next++;
    // Each upload's bytes differ (its last value), as real participants' do: every one is a new blob.
    const body = Buffer.from(update);
    body.writeFloatLE(i + 0.5, body.length - 4);
    const t = performance.now();
    const r = await fetch(url, { method: 'PUT', headers: { authorization: `Bearer ${tokens[i]}`, 'content-type': 'application/octet-stream' }, body });
    const text = await r.text();
    if (r.status !== 201 && r.status !== 200) throw new Error(`upload ${i}: ${r.status} ${text}`);
    latencies.push(performance.now() - t);
  }
}));
const seconds = (performance.now() - started) / 1000;
latencies.sort((a, b) => a - b);
console.log(JSON.stringify({ seconds, latencies }));
