// Public surface of @fuss/aggregator (the server itself follows in later work).
export * from './db/database.js';
export * from './db/migrate.js';
export * from './app.js';
export * from './config.js';
export * from './server.js';
