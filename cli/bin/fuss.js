#!/usr/bin/env node
// The `fuss` command. Runs the compiled CLI (npm install builds it through the root `prepare` script).
import { main } from '../dist/index.js';

process.exitCode = await main(process.argv.slice(2));
