/**
 * Putting containers back on the slot they ran before: one interrupted
 * update or rollback (recovery), or a whole stack update (ops/stack.ts when
 * a member fails, and recovery when berth died during one). Shared so that
 * a failure in-process and a kill leave the same "before".
 */
import fs from 'node:fs/promises';
import { lstatIfExists, readdirIfExists } from '../fsutil.ts';
import { BerthError } from '../errors.ts';
import { removeHostFiles, type InstalledHostFiles } from '../deploy/hostfs.ts';
import type { ContainerIntent, StackIntent } from '../deploy/intent.ts';
import { removeTmpfiles } from '../deploy/tmpfiles.ts';
import type { SystemdManager } from '../systemd/manager.ts';
import type { OpContext } from './context.ts';
import { activate, deactivateFiles, readSlotInfo, Undo } from './deployment.ts';
import { startAndCheck } from './unit-steps.ts';
import { needsGraph, planRollback, type NeedsGraph, type StackNode } from './stack-plan.ts';
import { loadSlot } from './switch.ts';

const JOB_TIMEOUT_MS = 120_000;

/**
 * Put an update or rollback back on `fromSlot`: the new slot's files off the
 * host, the old slot's back, the unit re-enabled as it was, the new slot
 * removed (when this operation made it). `restart`: also restart (or stop)
 * the unit as it was before; a stack restarts its members itself, in order.
 */
export async function switchBack(ctx: OpContext, systemd: SystemdManager, intent: ContainerIntent, options: { restart: boolean }): Promise<string> {
  const { paths } = ctx;
  const { name } = intent;
  const fromSlot = intent.fromSlot;
  const toSlot = intent.toSlot;
  if (fromSlot === undefined || toSlot === undefined) throw new Error('the intent names no slots');
  const dropNew = async () => {
    if (intent.newSlot && intent.phase !== 'stage') await fs.rm(paths.slot(name, toSlot), { recursive: true, force: true });
  };
  if (intent.phase !== 'switch') {
    // Nothing live was touched: the half-made slot goes.
    await dropNew();
    return `slot ${fromSlot} stayed live`;
  }
  const from = await loadSlot(ctx, name, fromSlot);
  const unit = paths.unitName(name);
  if (!options.restart && (await systemd.unitState(unit)).activeState !== 'inactive') {
    // Stopped before its files change: else systemd's own Restart= would start the old version once before the stack's restart does.
    await systemd.stopUnit(unit, JOB_TIMEOUT_MS);
  }
  const toInfo = await readSlotInfo(paths, name, toSlot);
  // Everything of the new slot off the host, then the old slot's files fresh (so its info.json records them again).
  if (toInfo) await deactivateFiles(ctx, toInfo);
  if (intent.hostFiles) await removePlannedHostFiles(intent.hostFiles);
  await deactivateFiles(ctx, from.info);
  await removeTmpfiles(paths.tmpfilesFile(name));
  await activate(ctx, from, fromSlot, new Undo());
  await systemd.reload();
  if (from.info.hasUnit) {
    if (intent.unitEnabled) await systemd.reenableUnitFiles([unit]);
    if (options.restart && intent.unitActive) {
      const result = await systemd.restartUnit(unit, JOB_TIMEOUT_MS);
      if (result !== 'done') ctx.report.warn(`${unit}: restart from slot ${fromSlot} ended with job result ${result}`);
    } else if (!intent.unitActive) {
      // It was not running before; a restart of the new version may have started it.
      if ((await systemd.unitState(unit)).activeState !== 'inactive') await systemd.stopUnit(unit, JOB_TIMEOUT_MS);
    }
  }
  await dropNew();
  return `slot ${fromSlot} is live again${options.restart && intent.unitActive ? ` and ${unit} restarted` : ''}`;
}

/**
 * Remove host files an operation planned to create (deploy/hostfs.ts
 * absentHostFiles). removeHostFiles keeps a file whose content differs; a
 * planned file that is empty was cut off between its creation and its write.
 */
export async function removePlannedHostFiles(planned: InstalledHostFiles): Promise<void> {
  for (const f of planned.files) {
    if (f.type !== 'file') continue;
    const st = await lstatIfExists(f.path);
    if (st?.isFile() && st.size === 0) await fs.rm(f.path, { force: true });
  }
  await removeHostFiles(planned);
}

/** The dependency graph of every installed container, from its live slot's recorded ordering. */
export async function installedGraph(ctx: OpContext): Promise<NeedsGraph> {
  const nodes: StackNode[] = [];
  for (const entry of (await readdirIfExists(ctx.paths.containers)).sort()) {
    if (entry.startsWith('.')) continue;
    const slot = await ctx.paths.activeSlot(entry);
    const info = slot === undefined ? undefined : await readSlotInfo(ctx.paths, entry, slot);
    if (info) nodes.push({ name: entry, ordering: info.ordering ?? {} });
  }
  return needsGraph(nodes);
}

/** Containers among `names` whose unit is active (or on its way: activating, reloading). */
export async function activeAmong(ctx: OpContext, systemd: SystemdManager, names: Iterable<string>): Promise<Set<string>> {
  const out = new Set<string>();
  for (const n of names) {
    const s = await systemd.unitState(ctx.paths.unitName(n));
    if (s.activeState === 'active' || s.activeState === 'activating' || s.activeState === 'reloading') out.add(n);
  }
  return out;
}

/**
 * Put every member of a stack back (last first), then restart or start,
 * each once and in dependency order, what ran before. Errors in the bring-up
 * are collected, not thrown: everything else still comes back up. Returns
 * one line per thing done and the bring-up failures.
 */
export async function rollBackStack(
  ctx: OpContext,
  systemd: SystemdManager,
  intent: StackIntent,
  /** Make the units about to be stopped durable in the stack's record first (in-process; recovery passes nothing). */
  recordStopping: (units: string[]) => Promise<void> = async () => undefined,
): Promise<{ lines: string[]; failures: BerthError[] }> {
  const graph = await installedGraph(ctx);
  const members = intent.members.map((m) => ({ name: m.name, wasActive: m.unitActive === true, switched: m.phase === 'switch' }));
  const active = await activeAmong(ctx, systemd, graph.keys());
  const plan = planRollback(graph, members, active, intent.stopped);
  await recordStopping(plan.stop);
  for (const name of plan.stop) {
    ctx.report.step(`Stopping ${ctx.paths.unitName(name)} (it depends on ${intent.members.map((m) => m.name).join(', ')})`);
    await systemd.stopUnit(ctx.paths.unitName(name), JOB_TIMEOUT_MS);
  }
  const lines: string[] = [];
  for (const name of plan.back) {
    const m = intent.members.find((x) => x.name === name)!;
    lines.push(`${name}: ${await switchBack(ctx, systemd, m, { restart: false })}`);
  }
  const failures: BerthError[] = [];
  for (const { name, how } of plan.bringUp) {
    const unit = ctx.paths.unitName(name);
    ctx.report.step(`${how === 'restart' ? 'Restarting' : 'Starting'} ${unit}`);
    try {
      await startAndCheck(systemd, unit, JOB_TIMEOUT_MS, 'after putting the stack back', how === 'restart');
      lines.push(`${unit} ${how}ed`);
    } catch (e) {
      if (!(e instanceof BerthError)) throw e;
      ctx.report.warn(e.message);
      failures.push(e);
    }
  }
  return { lines, failures };
}
