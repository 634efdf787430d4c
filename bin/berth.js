#!/usr/bin/env -S node --max-semi-space-size=4
// berth's entry point: the compiled CLI (dist/, made by `npm run build`, which
// `npm test` and packaging run), else the TypeScript sources through tsx.
//
// --max-semi-space-size=4 (here and in packaging/wrapper.sh): V8's young
// generation grows to 16 MiB semi-spaces by default, and a pull's short-lived
// buffers (zlib output, HTTP chunks) then pile up between scavenges until
// external-memory pressure forces full collections. With 4 MiB a 300 MB pull
// peaks at ~125 MiB instead of ~155 MiB and is no slower (docs/performance.md).
import { existsSync } from 'node:fs';

const compiled = new URL('../dist/cli/main.js', import.meta.url);
if (existsSync(compiled) && !process.env.BERTH_FROM_SOURCE) {
  await import(compiled.href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/cli/main.ts');
}
