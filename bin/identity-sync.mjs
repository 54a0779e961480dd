#!/usr/bin/env node
// The `identity-sync` command: runs the TypeScript CLI through tsx, so there is no build step.
import { fileURLToPath } from 'node:url';
import { tsImport } from 'tsx/esm/api';

const { main } = await tsImport('../cli/identity-sync.ts', {
  parentURL: import.meta.url,
  // This project's tsconfig, wherever the command is run from.
  tsconfig: fileURLToPath(new URL('../tsconfig.json', import.meta.url)),
});
await main();
