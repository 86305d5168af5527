#!/usr/bin/env node
// The `upc` command. The agent is TypeScript compiled by `npm run build` into dist/.
import '../dist/cli.js';
