#!/usr/bin/env node
// The `identity-sync` command: runs the TypeScript CLI through tsx, so there is no build step.
// Install it on your PATH from the clone with `npm link` (or `npm install -g .`).
import { fileURLToPath } from 'node:url';
import { nodeVersionProblem } from './node-version.mjs';

// Before anything else loads: on an older Node the rest fails with errors that do not say why.
const problem = nodeVersionProblem(process.versions.node);
if (problem) {
  process.stderr.write(`${problem}\n`);
  process.exit(1);
}

const { tsImport } = await import('tsx/esm/api');
const { main } = await tsImport('../cli/identity-sync.ts', {
  parentURL: import.meta.url,
  // This project's tsconfig, wherever the command is run from.
  tsconfig: fileURLToPath(new URL('../tsconfig.json', import.meta.url)),
});
await main();
