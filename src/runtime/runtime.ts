/**
 * The OCI runtime (runc, or crun where it works) as command lines for the
 * unit. berth never runs containers itself: systemd does, through these.
 */
import { constants } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { BerthError } from '../errors.ts';

const SEARCH_PATH = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

/** Resolve `runc`, `crun` or an absolute path to an executable. */
export async function findRuntime(name = 'runc'): Promise<string> {
  const candidates = name.includes('/') ? [path.resolve(name)] : SEARCH_PATH.map((d) => path.join(d, name));
  for (const candidate of candidates) {
    try {
      await fs.access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // try the next one
    }
  }
  throw new BerthError('NO_RUNTIME', `OCI runtime "${name}" not found${name.includes('/') ? '' : ` in ${SEARCH_PATH.join(':')}`}`, {
    hint: 'install runc (apt-get install runc) or pass --runtime PATH',
  });
}

export interface RuntimeCommands {
  /** Create and start detached, writing the container's PID where systemd reads it. */
  run: string[];
  /** Remove leftover state of a previous run (killed runtime, crash). */
  delete: string[];
}

export function runtimeCommands(runtime: string, id: string, bundle: string, pidFile: string): RuntimeCommands {
  return {
    run: [runtime, 'run', '--detach', '--pid-file', pidFile, '--bundle', bundle, id],
    delete: [runtime, 'delete', '--force', id],
  };
}
