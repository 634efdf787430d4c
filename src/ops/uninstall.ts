/**
 * berth uninstall: stop and disable the unit, remove it and every slot.
 * Idempotent: uninstalling what is not there succeeds and says so.
 */
import fs from 'node:fs/promises';
import { checkName } from '../deploy/paths.ts';
import { exists } from '../deploy/fsutil.ts';
import { readInfo } from '../deploy/info.ts';
import { withSystemd } from '../systemd/session.ts';
import { locked, type OpContext } from './context.ts';
import { requireRoot } from './require-root.ts';
import { removeUnit } from './unit-steps.ts';

export interface UninstallResult {
  name: string;
  /** false when there was nothing to remove. */
  removed: boolean;
}

export async function uninstall(ctx: OpContext, name: string): Promise<UninstallResult> {
  requireRoot('uninstall');
  checkName(name);
  return locked(ctx, `uninstall ${name}`, () => uninstallLocked(ctx, name));
}

async function uninstallLocked(ctx: OpContext, name: string): Promise<UninstallResult> {
  const { paths, report } = ctx;
  const slots = [paths.slot(name, 0), paths.slot(name, 1)];
  const present = await Promise.all([paths.current(name), ...slots].map(exists));
  if (!present.some(Boolean)) {
    // A unit of the same name that berth did not create is not ours to remove.
    return { name, removed: false };
  }
  // Only remove the unit if a deployment says berth made it.
  const infos = await Promise.all(slots.map((s) => readInfo(s).catch(() => undefined)));
  const ours = infos.some((i) => i?.name === name) || (await exists(paths.current(name)));
  await withSystemd(async (systemd) => {
    if (ours) {
      report.step(`Stopping and removing ${paths.unitName(name)}`);
      await removeUnit(systemd, paths.unitFile(name), paths.unitName(name));
    }
  });
  // The NAME symlink goes first: from then on the container is not "installed".
  await fs.rm(paths.current(name), { force: true });
  for (const slot of slots) await fs.rm(slot, { recursive: true, force: true });
  return { name, removed: true };
}
