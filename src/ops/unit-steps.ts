/** Unit steps shared by install, update, rollback, uninstall and recovery: start-and-check, removal. */
import fs from 'node:fs/promises';
import { BerthError } from '../errors.ts';
import { journalTail } from '../systemd/journal.ts';
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

/** How long a freshly started unit must stay up before it counts as started. */
const SETTLE_MS = 300;

/**
 * Start (or restart) `unit` and wait until its job is done and it is still
 * active a moment later: a container that dies at once (or a Restart= loop)
 * fails here rather than looking installed.
 */
export async function startAndCheck(systemd: SystemdManager, unit: string, timeoutMs: number, undone: string, restart = false): Promise<string> {
  const result = restart ? await systemd.restartUnit(unit, timeoutMs) : await systemd.startUnit(unit, timeoutMs);
  let state = await systemd.unitState(unit);
  if (result === 'done' && state.activeState === 'active') {
    await new Promise((r) => setTimeout(r, SETTLE_MS));
    state = await systemd.unitState(unit);
  }
  if (result !== 'done' || state.activeState !== 'active' || state.subState === 'auto-restart') {
    const journal = await journalTail(unit);
    throw new BerthError('START_FAILED', `${unit} failed to start (job ${result}, state ${state.activeState}/${state.subState}); ${undone}`, {
      hint: 'the journal lines below say why; fix the image or its command and try again',
      details: journal,
    });
  }
  return state.activeState;
}
