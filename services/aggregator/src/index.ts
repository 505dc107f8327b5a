// Public surface of @fuss/aggregator (the server itself follows in later work).
export * from './db/database.js';
export * from './db/migrate.js';
