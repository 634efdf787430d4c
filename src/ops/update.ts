/**
 * berth update: pull the container's image again (or --rebase onto another),
 * check it out into the other slot from scratch, re-render with the recorded
 * values plus new --set, and switch. A running container is restarted and
 * must prove itself (active through the settle period, health command); if it
 * does not, berth switches back to the previous slot and fails naming why.
 */
import fs from 'node:fs/promises';
import { crashPoint } from '../crashpoint.ts';
import { BerthError } from '../errors.ts';
import type { DeploymentInfo } from '../deploy/info.ts';
import { formatReference, parseImageReference } from '../transport/index.ts';
import { Journal } from '../deploy/intent.ts';
import { readdirIfExists } from '../fsutil.ts';
import type { Readiness } from '../runtime/readiness.ts';
import { checkName } from '../deploy/paths.ts';
import { findRuntime } from '../runtime/runtime.ts';
import { Store } from '../store/store.ts';
import { withSystemd } from '../systemd/session.ts';
import type { OpContext } from './context.ts';
import { locked } from './locked.ts';
import { commit, readSlotInfo, stage, Undo, type DeploySpec } from './deployment.ts';
import { obtainImage } from './obtain.ts';
import type { PullOptions } from './pull.ts';
import { requireRoot } from './require-root.ts';
import { loadSlot, switchSlots } from './switch.ts';

export interface UpdateOptions {
  set?: Record<string, string>;
  /** Move to another image reference. */
  rebase?: string;
  /** Use only what the store has. */
  noPull?: boolean;
  pull: PullOptions;
  healthCmd?: string[];
  /** A new readiness probe; null removes the recorded one; undefined keeps it. */
  ready?: Readiness | null;
  /** How long the new version must stay active (default 5 s). */
  settleMs?: number;
  /** Switch the runtime (runc, crun, a path, systemd): a new slot like any update. */
  runtime?: string;
}

export interface UpdateResult {
  name: string;
  updated: boolean;
  /** Why nothing changed, or what did. */
  message: string;
  image: string;
  manifestDigest: string;
  slot: 0 | 1;
}

export const DEFAULT_SETTLE_MS = 5_000;

export async function update(ctx: OpContext, name: string, options: UpdateOptions): Promise<UpdateResult> {
  requireRoot('update');
  checkName(name);
  return locked(ctx, `update ${name}`, () => updateLocked(ctx, name, options));
}

/** What an update of one container would deploy, and whether that differs from what runs. */
export interface PreparedUpdate {
  name: string;
  slot: 0 | 1;
  info: DeploymentInfo;
  /** The new deployment, to stage into the other slot. */
  spec: DeploySpec;
  /** Nothing differs: image, reference, values and health command are those of the live slot. */
  same: boolean;
}

/** Read NAME's live deployment, get the image (pulled unless noPull) and say what an update would deploy. */
export async function prepareUpdate(ctx: OpContext, store: Store, name: string, options: UpdateOptions): Promise<PreparedUpdate> {
  const { paths } = ctx;
  const slot = await paths.activeSlot(name);
  const info = slot === undefined ? undefined : await readSlotInfo(paths, name, slot);
  if (slot === undefined || info === undefined) {
    throw new BerthError('NOT_INSTALLED', `container ${name} is not installed`, { hint: 'berth list shows what is installed; berth install adds it' });
  }
  const ref = parseImageReference(options.rebase ?? info.image);
  const { image, reference, shared } = await obtainImage(ctx, store, ref, options.pull, options.noPull ? 'never' : 'always');
  const set = { ...info.set, ...(options.set ?? {}) };
  const healthCmd = options.healthCmd ?? info.healthCmd;
  const ready = options.ready === undefined ? info.ready : (options.ready ?? undefined);
  const same =
    image.manifestDigest === info.manifestDigest &&
    formatReference(reference) === info.image &&
    JSON.stringify(sorted(set)) === JSON.stringify(sorted(info.set)) &&
    JSON.stringify(healthCmd ?? null) === JSON.stringify(info.healthCmd ?? null) &&
    JSON.stringify(ready ?? null) === JSON.stringify(info.ready ?? null) &&
    (options.runtime === undefined || options.runtime === info.runtimeName);
  const runtimeName = options.runtime ?? info.runtimeName;
  const spec: DeploySpec = {
    name,
    ref: reference,
    image,
    shared,
    set,
    ordering: info.ordering,
    runtimeName,
    runtime: await findRuntime(runtimeName),
    ...(options.runtime !== undefined ? { runtimeFrom: 'option' as const } : info.runtimeFrom ? { runtimeFrom: info.runtimeFrom } : {}),
    ...(healthCmd ? { healthCmd } : {}),
    ...(ready ? { ready } : {}),
    ...(info.autoUpdate ? { autoUpdate: true } : {}),
    ...(info.values['UUID'] ? { uuid: info.values['UUID'] } : {}),
  };
  return { name, slot, info, spec, same };
}

async function updateLocked(ctx: OpContext, name: string, options: UpdateOptions): Promise<UpdateResult> {
  const { paths, report } = ctx;
  const store = await Store.open(paths.root);
  const { slot, info, spec, same } = await prepareUpdate(ctx, store, name, options);
  const { image, healthCmd } = spec;
  if (same) {
    return { name, updated: false, message: `${name} is up to date (${info.image} ${image.manifestDigest})`, image: info.image, manifestDigest: info.manifestDigest, slot };
  }

  const next: 0 | 1 = slot === 0 ? 1 : 0;
  const undo = new Undo();
  // Recovery from a kill switches back to `slot` and drops `next` (once commit has begun to replace it).
  const journal = new Journal(paths.root, { op: 'update', name, phase: 'stage', fromSlot: slot, toSlot: next, newSlot: true });
  await journal.write();
  crashPoint('deploy.intent-written');
  let staged;
  try {
    staged = await stage(ctx, store, spec, undo, next);
    await commit(paths, staged, next, undo, journal);
  } catch (e) {
    await undo.run(report);
    await journal.done();
    throw e;
  }
  const committed = staged;
  await withSystemd(async (systemd) => {
    const from = await loadSlot(ctx, name, slot);
    const wasActive = info.hasUnit && (await systemd.unitState(paths.unitName(name))).activeState === 'active';
    try {
      await switchSlots(ctx, systemd, from, slot, committed, next, journal, {
        start: wasActive,
        settleMs: options.settleMs ?? DEFAULT_SETTLE_MS,
        ...(healthCmd ? { healthCmd } : {}),
      });
      await journal.done();
    } catch (e) {
      // Switched back: the failed version leaves no slot behind to roll back to by mistake.
      await fs.rm(paths.slot(name, next), { recursive: true, force: true });
      await journal.done();
      throw e instanceof BerthError && (e.code === 'START_FAILED' || e.code === 'UPDATE_FAILED')
        ? new BerthError('UPDATE_FAILED', `update of ${name} to ${image.manifestDigest} failed and was rolled back: ${e.message}`, {
            hint: `${name} runs ${info.image} (${info.manifestDigest}) again; the journal lines below say what went wrong`,
            details: e.details,
          })
        : e;
    }
  });
  return { name, updated: true, message: `${name} updated to ${committed.info.image} (${image.manifestDigest}) in slot ${next}`, image: committed.info.image, manifestDigest: image.manifestDigest, slot: next };
}

function sorted(o: Record<string, string>): [string, string][] {
  return Object.entries(o).sort(([a], [b]) => (a < b ? -1 : 1));
}

/** Every installed container's name (optionally only those opted in to auto-update). */
export async function installedNames(ctx: OpContext, autoOnly: boolean): Promise<string[]> {
  const entries = await readdirIfExists(ctx.paths.containers);
  const names: string[] = [];
  for (const entry of entries.sort()) {
    if (entry.startsWith('.')) continue;
    const slot = await ctx.paths.activeSlot(entry);
    if (slot === undefined) continue;
    if (autoOnly && !(await readSlotInfo(ctx.paths, entry, slot))?.autoUpdate) continue;
    names.push(entry);
  }
  return names;
}
