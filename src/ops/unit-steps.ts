/** Unit steps shared by install, update, rollback, uninstall and recovery: start-and-check, removal. */
import fs from 'node:fs/promises';
import { BerthError } from '../errors.ts';
import { journalTail } from '../systemd/journal.ts';
import type { SystemdManager, UnitState } from '../systemd/manager.ts';

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

/** How long a freshly started unit must stay up (watched every POLL_MS) before it counts as started. */
const SETTLE_MS = 1_000;
const POLL_MS = 100;

/**
 * Start (or restart) `unit` and wait until its job is done and it stays
 * active a moment: a container that dies at once fails here rather than
 * looking installed. So does one that systemd keeps restarting (Restart=
 * with a crashing process: NRestarts grows, SubState auto-restart, or it is
 * activating again), and a start job that is not done when berth stops
 * waiting (a Type=notify unit that never says READY=1 is still activating).
 */
export async function startAndCheck(systemd: SystemdManager, unit: string, timeoutMs: number, undone: string, restart = false): Promise<string> {
  let result: string;
  try {
    result = restart ? await systemd.restartUnit(unit, timeoutMs) : await systemd.startUnit(unit, timeoutMs);
  } catch (e) {
    if (!(e instanceof BerthError) || e.code !== 'START_FAILED') throw e;
    result = `not finished within ${Math.round(timeoutMs / 1000)}s`;
  }
  let state = await systemd.unitState(unit);
  // A unit whose Condition*= (ConditionVirtualization=vmware) is not met is skipped by
  // systemd, not failed: installed and enabled as atomic did, it starts where it applies.
  if (result === 'done' && state.activeState === 'inactive' && !state.conditionResult) return state.activeState;
  const settled = Date.now() + SETTLE_MS;
  let why = unsteady(state);
  while (result === 'done' && why === undefined && Date.now() < settled) {
    await new Promise((r) => setTimeout(r, POLL_MS));
    state = await systemd.unitState(unit);
    why = unsteady(state);
  }
  if (result !== 'done' || why !== undefined) {
    const journal = await journalTail(unit);
    throw new BerthError('START_FAILED', `${unit} failed to start (job ${result}, state ${state.activeState}/${state.subState}${why ? `: ${why}` : ''}); ${undone}`, {
      hint: 'the journal lines below say why; fix the image or its command and try again',
      details: journal,
    });
  }
  return state.activeState;
}

/**
 * Why a unit whose start job is done is not (yet) a started unit; undefined
 * when it is. An explicit start or restart sets NRestarts to 0, so any count
 * is systemd restarting it since.
 */
function unsteady(state: UnitState): string | undefined {
  if (state.nRestarts > 0) return `restarted ${state.nRestarts} time(s) by systemd`;
  if (state.subState === 'auto-restart') return 'waiting to be restarted by systemd';
  if (state.activeState === 'activating') return 'still activating';
  if (state.activeState !== 'active') return 'not active';
  return undefined;
}
