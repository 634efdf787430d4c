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
 *   uninstall  forward: the uninstall runs again (every step is idempotent);
 *   stack      back: every member of an ordered update of several containers
 *              (apply, update --all) put back as an update is, last first,
 *              then what ran restarted or started once, in dependency order.
 *
 * Staging directories are always garbage when the lock is free: they only
 * live inside a locked operation.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { BerthError } from '../errors.ts';
import { ifExists, readdirIfExists } from '../fsutil.ts';
import { syncDir } from '../durable.ts';
import { readIntents, removeIntent, type ContainerIntent, type Intent, type StackIntent } from '../deploy/intent.ts';
import { removeTmpfiles } from '../deploy/tmpfiles.ts';
import { Store } from '../store/store.ts';
import type { SystemdManager } from '../systemd/manager.ts';
import { withSystemd } from '../systemd/session.ts';
import type { OpContext } from './context.ts';
import { deactivateFiles, readSlotInfo } from './deployment.ts';
import { recoverImages } from './layer-pipeline.ts';
import { removePlannedHostFiles, rollBackStack, switchBack } from './switch-back.ts';
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
  const stacks = intents.filter((i): i is StackIntent => i.kind === 'stack');
  for (const intent of intents) {
    if (intent.kind === 'images') actions.push(await recoverImages(ctx, await Store.open(ctx.paths.root), intent));
  }
  if (containers.length > 0 || stacks.length > 0) {
    await withSystemd(async (systemd) => {
      // A container operation inside a stack (an install by apply) first: the stack's bring-up then sees the host without it.
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
      for (const intent of stacks) {
        try {
          actions.push(await recoverStack(ctx, systemd, intent));
        } catch (e) {
          throw new BerthError('IO_ERROR', `cannot recover the interrupted ${intent.op} of ${intent.members.map((m) => m.name).join(', ')}: ${(e as Error).message}`, {
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
      done = `${what} undone: ${await switchBack(ctx, systemd, intent, { restart: true })}`;
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

async function recoverStack(ctx: OpContext, systemd: SystemdManager, intent: StackIntent): Promise<string> {
  const { lines, failures } = await rollBackStack(ctx, systemd, intent);
  for (const m of intent.members) await removeTempFiles(ctx, m.name);
  await removeIntent(ctx.paths.root, intent);
  const names = intent.members.map((m) => m.name).join(', ');
  return `${intent.op} of ${names} (pid ${intent.pid}) undone: ${lines.join('; ')}${failures.length > 0 ? `; did not start again: ${failures.map((f) => f.message).join('; ')}` : ''}`;
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
