/** Unit removal, shared by install's undo and uninstall. */
import fs from 'node:fs/promises';
import type { SystemdManager } from '../systemd/manager.ts';

const STOP_TIMEOUT_MS = 120_000;

/**
 * Stop, disable, delete the file, reload, forget a failed state: afterwards
 * systemd reports LoadState not-found for the unit.
 */
export async function removeUnit(systemd: SystemdManager, unitFile: string, unit: string): Promise<void> {
  const state = await systemd.unitState(unit);
  if (state.activeState !== 'inactive' && state.activeState !== 'failed' && state.loadState !== 'not-found') {
    await systemd.stopUnit(unit, STOP_TIMEOUT_MS);
  }
  if (state.loadState !== 'not-found') await systemd.disableUnitFiles([unit]);
  await fs.rm(unitFile, { force: true });
  await systemd.reload();
  await systemd.resetFailed(unit);
}
