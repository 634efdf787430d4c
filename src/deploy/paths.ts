/**
 * Where berth keeps things on a host. The layout follows atomic's:
 *   ROOT/containers/NAME -> NAME.0     the active slot (a symlink, switched atomically)
 *   ROOT/containers/NAME.0/            rootfs/, config.json, info.json, copies of the unit
 *   /etc/systemd/system/NAME.service   the unit (in /etc, so it loads before /var is mounted)
 */
import path from 'node:path';
import { BerthError } from '../errors.ts';
import { readlinkIfLink } from '../fsutil.ts';

export const DEFAULT_ROOT = '/var/lib/berth';
export const UNIT_DIR = '/etc/systemd/system';
export const TMPFILES_DIR = '/etc/tmpfiles.d';

/** A container name is also a unit name and a runc container ID. */
const nameRe = /^[a-z0-9][a-z0-9_.-]{0,62}$/;

export function checkName(name: string): string {
  if (!nameRe.test(name) || name.endsWith('.service')) {
    throw new BerthError('INVALID_NAME', `invalid container name ${JSON.stringify(name.slice(0, 80))}`, {
      hint: 'use 1-63 lowercase letters, digits, . _ - starting with a letter or digit (and not ending in .service)',
    });
  }
  return name;
}

export class Paths {
  readonly root: string;
  readonly unitDir: string;

  constructor(root: string = DEFAULT_ROOT, unitDir: string = UNIT_DIR) {
    this.root = path.resolve(root);
    this.unitDir = unitDir;
  }

  get containers(): string {
    return path.join(this.root, 'containers');
  }

  /** The NAME symlink: the deployment that is live. */
  current(name: string): string {
    return path.join(this.containers, name);
  }

  slot(name: string, slot: 0 | 1): string {
    return path.join(this.containers, `${name}.${slot}`);
  }

  /** Staging directories are hidden (leading dot) and never read as deployments. */
  staging(name: string): string {
    return path.join(this.containers, `.staging-${name}-${process.pid}-${Date.now().toString(36)}`);
  }

  unitName(name: string): string {
    return `${name}.service`;
  }

  unitFile(name: string): string {
    return path.join(this.unitDir, this.unitName(name));
  }

  tmpfilesFile(name: string): string {
    return path.join(TMPFILES_DIR, `${name}.conf`);
  }

  /** The slot NAME points at, or undefined when it is not installed. */
  async activeSlot(name: string): Promise<0 | 1 | undefined> {
    const target = await readlinkIfLink(this.current(name));
    if (target === `${name}.0`) return 0;
    if (target === `${name}.1`) return 1;
    return undefined;
  }
}
