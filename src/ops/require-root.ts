import { BerthError } from '../errors.ts';

/** State changes need root: they write /etc/systemd/system and run containers. */
export function requireRoot(command: string): void {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    throw new BerthError('NOT_ROOT', `berth ${command} must run as root`, { hint: `run: sudo berth ${command} ...` });
  }
}
