#!/usr/bin/env node
// berth's entry point: the compiled CLI (dist/, made by `npm run build`, which
// `npm test` and packaging run), else the TypeScript sources through tsx.
import { existsSync } from 'node:fs';

const compiled = new URL('../dist/cli/main.js', import.meta.url);
if (existsSync(compiled) && !process.env.BERTH_FROM_SOURCE) {
  await import(compiled.href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/cli/main.ts');
}
