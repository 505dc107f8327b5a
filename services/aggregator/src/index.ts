// Public surface of @fuss/aggregator: the app factory, the server, the database and the worker pools.
export * from './db/database.js';
export * from './db/migrate.js';
export * from './app.js';
export * from './config.js';
export * from './server.js';
export * from './segmentation/worker-pool.js';
export * from './aggregation/model-worker.js';
