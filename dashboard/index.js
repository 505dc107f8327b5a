// Where the built dashboard lives (npm install builds it through the root `prepare` script); the
// aggregation server serves this folder at /.
import { fileURLToPath } from 'node:url';

export const dashboardDir = fileURLToPath(new URL('./dist/', import.meta.url));
