/**
 * berth uninstall: stop and disable the unit, remove it, its tmpfiles and the
 * unchanged host files, then both slots. State directories are user data:
 * they stay (tmpfiles `d` lines are not purged). Idempotent: uninstalling
 * what is not there succeeds and says so.
 */
import { checkName } from '../deploy/paths.ts';
import type { OpContext } from './context.ts';
import { locked } from './locked.ts';
import { requireRoot } from './require-root.ts';
import { uninstallLocked, type UninstallOptions, type UninstallResult } from './teardown.ts';

export async function uninstall(ctx: OpContext, name: string, options: UninstallOptions = {}): Promise<UninstallResult> {
  requireRoot('uninstall');
  checkName(name);
  return locked(ctx, `uninstall ${name}`, () => uninstallLocked(ctx, name, options));
}
