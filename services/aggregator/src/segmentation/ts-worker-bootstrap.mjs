// Runs a TypeScript worker entry (tests run the server from its sources): registers tsx in the worker
// thread, then imports the entry named in workerData. The built server starts its .js entries directly.
import { register } from 'tsx/esm/api';
import { workerData } from 'node:worker_threads';

register();
await import(workerData.entry);
