/**
 * Switching a container between its two slots, shared by update and rollback.
 * The old slot's host files (unchanged ones) and tmpfiles give way to the new
 * slot's, NAME is pointed at the new slot, the unit file is replaced and
 * re-enabled, and a running unit is restarted (RestartUnit, so units that
 * Require= it restart with it instead of staying stopped). A switch whose
 * restart fails is switched back the same way.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { crashPoint } from '../crashpoint.ts';
import { BerthError } from '../errors.ts';
import { ifExists } from '../fsutil.ts';
import { deploymentRootfs, readInfo, type DeploymentInfo } from '../deploy/info.ts';
import type { IntentLog } from '../deploy/intent.ts';
import { readExports } from '../render/exports.ts';
import type { Rendered } from '../render/container.ts';
import { planHostFiles } from '../render/hostfs-plan.ts';
import { containerCommand } from '../runtime/exec.ts';
import { journalTail } from '../systemd/journal.ts';
import type { SystemdManager } from '../systemd/manager.ts';
import type { OpContext } from './context.ts';
import { activate, deactivateFiles, Undo, type Staged } from './deployment.ts';
import { startAndCheck } from './unit-steps.ts';

const run = promisify(execFile);

/** A committed slot as activate() needs it: its saved unit and tmpfiles, and its host files planned again from its rootfs. */
export async function loadSlot(ctx: OpContext, name: string, slot: 0 | 1): Promise<Staged> {
  const dir = ctx.paths.slot(name, slot);
  const info = await readInfo(dir);
  if (!info) throw new BerthError('NOT_INSTALLED', `slot ${slot} of ${name} holds no deployment`, { hint: `berth status ${name} shows both slots` });
  const optional = (file: string) => ifExists(fs.readFile(path.join(dir, file), 'utf8'));
  const exports = await readExports(deploymentRootfs(dir, info));
  const hostfs = planHostFiles({
    entries: exports.hostfs,
    renameFiles: exports.manifest?.renameFiles ?? {},
    installedFilesTemplate: exports.manifest?.installedFilesTemplate ?? [],
    values: info.values,
  }).plan;
  const rendered: Rendered = {
    values: info.values,
    configJson: await fs.readFile(path.join(dir, 'config.json'), 'utf8'),
    unit: info.hasUnit ? await optional(ctx.paths.unitName(name)) : undefined,
    tmpfiles: info.hasTmpfiles ? await optional('tmpfiles.conf') : undefined,
    hostfs,
    warnings: [],
  };
  return { dir, info, rendered };
}

export interface SwitchOptions {
  /** Start the unit after the switch (it was running before). */
  start: boolean;
  healthCmd?: string[];
  /** How long the new version must stay active to count as good. */
  settleMs: number;
  startTimeoutMs?: number;
  /** On failure leave `to` live and only throw: a stack update (ops/stack.ts) puts all its members back itself. */
  noSwitchBack?: boolean;
}

/**
 * Make `to` (committed in `slot`) the live deployment in place of `from`,
 * restarting the unit when `options.start`. Throws (after switching back to
 * `from`) when the new version does not start or prove healthy.
 */
export async function switchSlots(
  ctx: OpContext,
  systemd: SystemdManager,
  from: Staged,
  fromSlot: 0 | 1,
  to: Staged,
  slot: 0 | 1,
  journal: IntentLog,
  options: SwitchOptions,
): Promise<void> {
  const { paths, report } = ctx;
  const unit = paths.unitName(to.info.name);
  const enabled = (await systemd.unitState(unit)).unitFileState === 'enabled';
  // What recovery restores if this process dies from here on.
  await journal.write({ phase: 'switch', unitEnabled: enabled, unitActive: options.start });
  await deactivateFiles(ctx, from.info);
  crashPoint('switch.deactivated');
  const undo = new Undo();
  try {
    await activate(ctx, to, slot, undo, journal);
    await systemd.reload();
    crashPoint('switch.reloaded');
    if (enabled && to.info.hasUnit) await systemd.reenableUnitFiles([unit]);
    if (options.start && to.info.hasUnit) {
      report.step(`Restarting ${unit} from slot ${slot}`);
      await startAndCheck(systemd, unit, options.startTimeoutMs ?? 120_000, options.noSwitchBack ? 'its stack is put back' : 'switching back', true);
      crashPoint('switch.restarted');
      await prove(ctx, systemd, to.info, options);
    }
    crashPoint('switch.proven');
  } catch (e) {
    report.warn(`${unit}: ${(e as Error).message.split('\n')[0]}`);
    if (options.noSwitchBack) throw e;
    report.step(`Switching ${to.info.name} back to slot ${fromSlot}`);
    await deactivateFiles(ctx, to.info).catch(() => undefined);
    undo.clear();
    const back = new Undo();
    await activate(ctx, from, fromSlot, back);
    await systemd.reload();
    if (enabled) await systemd.reenableUnitFiles([unit]);
    if (options.start) await startAndCheck(systemd, unit, options.startTimeoutMs ?? 120_000, 'the previous version does not start either', true);
    throw e;
  }
}

/** The proof that a new version works: still active after the settle period, and its health command passes. */
async function prove(ctx: OpContext, systemd: SystemdManager, info: DeploymentInfo, options: SwitchOptions): Promise<void> {
  const unit = ctx.paths.unitName(info.name);
  const deadline = Date.now() + options.settleMs;
  for (;;) {
    const state = await systemd.unitState(unit);
    if (state.activeState !== 'active' || state.subState === 'auto-restart') {
      throw new BerthError('UPDATE_FAILED', `${unit} did not stay active (${state.activeState}/${state.subState}) within ${Math.round(options.settleMs / 1000)}s of starting`, {
        hint: 'the journal lines below say why',
        details: await journalTail(unit),
      });
    }
    if (Date.now() >= deadline) break;
    await new Promise((r) => setTimeout(r, Math.min(250, deadline - Date.now())));
  }
  const health = options.healthCmd ?? info.healthCmd;
  if (health && health.length > 0) {
    ctx.report.step(`Checking health: ${health.join(' ')}`);
    try {
      const cmd = await containerCommand(info.runtime, info.name, health);
      await run(cmd.argv[0]!, cmd.argv.slice(1), { timeout: 30_000, ...(cmd.env === undefined ? {} : { env: cmd.env }) });
    } catch (e) {
      const out = `${(e as { stderr?: string }).stderr ?? ''}${(e as { stdout?: string }).stdout ?? ''}`.trim().split('\n').slice(-5);
      throw new BerthError('UPDATE_FAILED', `${unit}: the health command failed (${health.join(' ')})`, {
        hint: 'the new version runs but is not healthy',
        details: [...out, ...(await journalTail(unit, 5))],
      });
    }
  }
}
