// Writes openapi/openapi.json from the server's route schemas (npm run openapi). A test fails when
// the committed copy differs from what the app serves.
import { writeFile, mkdir } from 'node:fs/promises';
import { buildApp, openDatabase } from '@fuss/aggregator';

const db = await openDatabase({ pgliteDir: 'memory://' });
const app = await buildApp({ db, config: { adminToken: 'x'.repeat(16) } });
await app.ready();
await mkdir('openapi', { recursive: true });
await writeFile('openapi/openapi.json', `${JSON.stringify(app.swagger(), null, 2)}\n`);
await app.close();
await db.close();
console.log('wrote openapi/openapi.json');
