/**
 * How to start a berth build the way its executable starts: node with the
 * flags of bin/berth.js's `#!/usr/bin/env -S node FLAGS` line (the packaged
 * wrapper passes the same). Read from the build's own copy, so a baseline
 * from an older commit runs with the flags it had.
 */
import { readFileSync } from 'node:fs';

export function berthArgv(bin: string): string[] {
  const shebang = readFileSync(bin, 'utf8').split('\n', 1)[0] ?? '';
  const m = /^#!\/usr\/bin\/env(?: -S)? node(.*)$/.exec(shebang);
  if (!m) throw new Error(`${bin}: unexpected first line ${JSON.stringify(shebang)}`);
  return [...m[1]!.trim().split(/\s+/).filter(Boolean), bin];
}
