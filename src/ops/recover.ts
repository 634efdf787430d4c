/**
 * Recovery from a berth that died mid-operation (SIGKILL, OOM, power cut):
 * run under the state lock before every state change and by `berth verify`,
 * it finds the write-ahead intents (deploy/intent.ts) a dead process left and
 * puts each thing back to where it was before, or forward to done:
 *
 *   pull, load forward when every image record is in (the references are set),
 *              else back (the records it created removed); layer-pipeline.ts;
 *   install    back: unit stopped, disabled and deleted, tmpfiles, host files
 *              (those the intent says were absent), NAME and the slot removed;
 *   update     back: the old slot's files, NAME and unit put back, the unit
 *              re-enabled and restarted as it was, the new slot removed;
 *   rollback   back, the same way, keeping both slots;
 *   uninstall  forward: the uninstall runs again (every step is idempotent).
 *
 * Staging directories are always garbage when the lock is free: they only
 * live inside a locked operation.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { BerthError } from '../errors.ts';
import { ifExists, lstatIfExists, readdirIfExists } from '../fsutil.ts';
import { syncDir } from '../durable.ts';
import { removeHostFiles, type InstalledHostFiles } from '../deploy/hostfs.ts';
import { readIntents, removeIntent, type ContainerIntent, type Intent } from '../deploy/intent.ts';
import { removeTmpfiles } from '../deploy/tmpfiles.ts';
import { Store } from '../store/store.ts';
import type { SystemdManager } from '../systemd/manager.ts';
import { withSystemd } from '../systemd/session.ts';
import type { OpContext } from './context.ts';
import { activate, deactivateFiles, readSlotInfo, Undo } from './deployment.ts';
import { recoverImages } from './layer-pipeline.ts';
import { loadSlot } from './switch.ts';
import { removeUnit } from './unit-steps.ts';
import { uninstallLocked } from './teardown.ts';

export interface RecoveryReport {
  /** One line per thing put right, for the user. */
  actions: string[];
}

/** Callers hold the state lock. Cheap when nothing is pending: one readdir each for intents and staging. */
export async function recover(ctx: OpContext): Promise<RecoveryReport> {
  const actions: string[] = [];
  const intents = await readIntents(ctx.paths.root);
  const containers = intents.filter((i): i is ContainerIntent => i.kind === 'container');
  for (const intent of intents) {
    if (intent.kind === 'images') actions.push(await recoverImages(ctx, await Store.open(ctx.paths.root), intent));
  }
  if (containers.length > 0) {
    await withSystemd(async (systemd) => {
      for (const intent of containers) {
        try {
          actions.push(await recoverContainer(ctx, systemd, intent));
        } catch (e) {
          throw new BerthError('IO_ERROR', `cannot recover the interrupted ${intent.op} of ${intent.name}: ${(e as Error).message}`, {
            hint: `the intent is kept in ${ctx.paths.root}/intents; fix the cause and run berth verify to retry`,
            cause: e,
          });
        }
      }
    });
  }
  actions.push(...(await removeStaging(ctx)));
  for (const a of actions) ctx.report.warn(`recovered: ${a}`);
  return { actions };
}

async function recoverContainer(ctx: OpContext, systemd: SystemdManager, intent: ContainerIntent): Promise<string> {
  const what = `${intent.op} of ${intent.name} (pid ${intent.pid})`;
  let done: string;
  switch (intent.op) {
    case 'install':
      await undoInstall(ctx, systemd, intent);
      done = `${what} undone: ${intent.name} is not installed`;
      break;
    case 'update':
    case 'rollback':
      done = `${what} undone: ${await switchBack(ctx, systemd, intent)}`;
      break;
    case 'uninstall':
      await uninstallLocked(ctx, intent.name, intent.purgeData ? { purgeData: true } : {});
      done = `${what} finished: ${intent.name} is uninstalled`;
      break;
  }
  await removeTempFiles(ctx, intent.name);
  await removeIntent(ctx.paths.root, intent);
  return done;
}

async function undoInstall(ctx: OpContext, systemd: SystemdManager, intent: ContainerIntent): Promise<void> {
  const { paths } = ctx;
  const { name } = intent;
  // install refused to start unless the unit name was free: a unit file there now is the install's.
  await removeUnit(systemd, paths.unitFile(name), paths.unitName(name));
  const info = await readSlotInfo(paths, name, 0);
  if (info) await deactivateFiles(ctx, info);
  await removeTmpfiles(paths.tmpfilesFile(name));
  if (intent.hostFiles) await removePlannedHostFiles(intent.hostFiles);
  await fs.rm(paths.current(name), { force: true });
  await fs.rm(paths.slot(name, 0), { recursive: true, force: true });
  await ifExists(syncDir(paths.containers));
}

/** Put an interrupted update or rollback back on `fromSlot`, as the unit was. */
async function switchBack(ctx: OpContext, systemd: SystemdManager, intent: ContainerIntent): Promise<string> {
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
  const toInfo = await readSlotInfo(paths, name, toSlot);
  // Everything of the new slot off the host, then the old slot's files fresh (so its info.json records them again).
  if (toInfo) await deactivateFiles(ctx, toInfo);
  if (intent.hostFiles) await removePlannedHostFiles(intent.hostFiles);
  await deactivateFiles(ctx, from.info);
  await removeTmpfiles(paths.tmpfilesFile(name));
  await activate(ctx, from, fromSlot, new Undo());
  await systemd.reload();
  const unit = paths.unitName(name);
  if (from.info.hasUnit) {
    if (intent.unitEnabled) await systemd.reenableUnitFiles([unit]);
    if (intent.unitActive) {
      const result = await systemd.restartUnit(unit, 120_000);
      if (result !== 'done') ctx.report.warn(`${unit}: restart from slot ${fromSlot} ended with job result ${result}`);
    } else {
      // It was not running before; a restart of the new version may have started it.
      if ((await systemd.unitState(unit)).activeState !== 'inactive') await systemd.stopUnit(unit, 120_000);
    }
  }
  await dropNew();
  return `slot ${fromSlot} is live again${intent.unitActive ? ` and ${unit} restarted` : ''}`;
}

/**
 * Remove host files an operation planned to create (deploy/hostfs.ts
 * absentHostFiles). removeHostFiles keeps a file whose content differs; a
 * planned file that is empty was cut off between its creation and its write.
 */
async function removePlannedHostFiles(planned: InstalledHostFiles): Promise<void> {
  for (const f of planned.files) {
    if (f.type !== 'file') continue;
    const st = await lstatIfExists(f.path);
    if (st?.isFile() && st.size === 0) await fs.rm(f.path, { force: true });
  }
  await removeHostFiles(planned);
}

/**
 * Staging directories and the temp symlinks of replaceSymlink(): only a
 * locked operation makes them, so with the lock held they are a dead one's.
 */
async function removeStaging(ctx: OpContext): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdirIfExists(ctx.paths.containers)) {
    const full = path.join(ctx.paths.containers, entry);
    if (entry.startsWith('.staging-')) {
      await fs.rm(full, { recursive: true, force: true });
      out.push(`removed staging directory ${entry}`);
    } else if (/\.tmp-\d+$/.test(entry) && (await fs.lstat(full)).isSymbolicLink()) {
      await fs.rm(full, { force: true });
      out.push(`removed temporary symlink ${entry}`);
    }
  }
  return out;
}

/** Temp files of writeFileAtomic() that a kill left next to NAME's unit and tmpfiles. */
async function removeTempFiles(ctx: OpContext, name: string): Promise<void> {
  for (const file of [ctx.paths.unitFile(name), ctx.paths.tmpfilesFile(name)]) {
    const dir = path.dirname(file);
    const prefix = `.${path.basename(file)}.tmp-`;
    for (const entry of await readdirIfExists(dir)) {
      if (entry.startsWith(prefix)) await fs.rm(path.join(dir, entry), { force: true });
    }
  }
}

/** The intents a dead berth left, for `berth verify` without root (which cannot recover them). */
export async function pendingIntents(ctx: OpContext): Promise<Intent[]> {
  return readIntents(ctx.paths.root);
}
