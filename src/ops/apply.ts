/**
 * berth apply: make the host match a plan (see plan.ts, docs/plan.md).
 *
 *   1. the plan is validated whole (plan.ts) before anything else;
 *   2. every image is pulled and trust-checked, under the lock, before any
 *      container changes;
 *   3. each entry is compared with what is installed, and installed, updated
 *      or left alone in dependency order; --prune uninstalls the rest.
 *
 * install/update/uninstall take the lock themselves (it is not reentrant),
 * so it is held only around the pulls. An entry that fails leaves nothing
 * half-done (those operations undo themselves); what depends on it is
 * skipped, everything else is still applied.
 */
import fs from 'node:fs/promises';
import { crashPoint } from '../crashpoint.ts';
import { BerthError, errnoCode, type ErrorCode } from '../errors.ts';
import { formatReference, parseImageReference } from '../image/reference.ts';
import type { DeploymentInfo } from '../deploy/info.ts';
import { normaliseOrdering, ORDERING_FLAGS } from '../render/ordering.ts';
import { Store } from '../store/store.ts';
import { locked, type OpContext } from './context.ts';
import { readSlotInfo } from './deployment.ts';
import { install } from './install.ts';
import { obtainImage, type PullPolicy } from './obtain.ts';
import { applyOrder, parsePlan, type Plan, type PlanEntry } from './plan.ts';
import type { PullOptions } from './pull.ts';
import { requireRoot } from './require-root.ts';
import { uninstall } from './uninstall.ts';
import { installedNames, update } from './update.ts';

export type ApplyActionKind = 'install' | 'update' | 'uninstall' | 'none' | 'skipped' | 'failed';

export interface ApplyAction {
  name: string;
  action: ApplyActionKind;
  /** Why (what differs), or what was done. */
  reason?: string;
  /** The failure, for action "failed". */
  error?: string;
  code?: ErrorCode;
}

export interface ApplyResult {
  actions: ApplyAction[];
  /** Something was (or, with dryRun, would be) changed. */
  changed: boolean;
  dryRun: boolean;
  /** Set when an entry failed: the process exits with its status. */
  error?: BerthError;
}

export interface ApplyOptions {
  pull: PullOptions;
  /** Uninstall berth containers the plan does not name. */
  prune?: boolean;
  /** Pull (the store is a cache) and decide, but change no container. */
  dryRun?: boolean;
  /** Settle period of updates (default: update's). */
  settleMs?: number;
  /**
   * always: ask the registry for every image (a moved tag is noticed);
   * missing (default): use what the store holds, so a plan applies offline
   * after `berth load`; never: the store only.
   */
  pullPolicy?: PullPolicy;
}

/** Read, validate and apply a plan file ("-": standard input). */
export async function applyPlanFile(ctx: OpContext, file: string, options: ApplyOptions): Promise<ApplyResult> {
  let text: string;
  try {
    text = file === '-' ? await readStdin() : await fs.readFile(file, 'utf8');
  } catch (e) {
    throw new BerthError('USAGE', `cannot read plan ${file}: ${errnoCode(e) ?? (e as Error).message}`, { hint: 'give the path of a plan file (docs/plan.md)' });
  }
  return applyPlan(ctx, parsePlan(text, file === '-' ? 'plan' : file), options);
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

interface Pulled {
  /** Canonical reference the image is stored under (short names resolved). */
  reference: string;
  manifestDigest: string;
}

/** What to do about one entry; "reinstall" is an update that update() cannot express (see needsReinstall). */
interface Decision {
  entry: PlanEntry;
  kind: 'install' | 'update' | 'reinstall' | 'none' | 'failed';
  reasons: string[];
  pulled?: Pulled;
  error?: BerthError;
}

export async function applyPlan(ctx: OpContext, plan: Plan, options: ApplyOptions): Promise<ApplyResult> {
  if (!options.dryRun) requireRoot('apply');
  const pull: PullOptions = {
    ...options.pull,
    // The command line wins over the plan's defaults.
    source: { ...(plan.defaults.tlsVerify === undefined ? {} : { tlsVerify: plan.defaults.tlsVerify }), ...options.pull.source },
  };
  const order = applyOrder(plan);
  const pulled = await pullAll(ctx, order, pull, options.pullPolicy ?? 'missing');

  const decisions: Decision[] = [];
  for (const entry of order) {
    const p = pulled.get(entry.image)!;
    if (p instanceof BerthError) {
      decisions.push({ entry, kind: 'failed', reasons: [], error: p });
      continue;
    }
    decisions.push({ ...(await decide(ctx, entry, p)), pulled: p });
  }
  const planned = new Set(plan.entries.map((e) => e.name));
  const prune = options.prune ? (await installedNames(ctx, false)).filter((n) => !planned.has(n)) : [];

  const actions: ApplyAction[] = [];
  const broken = new Map<string, string>(); // entry -> the failed entry it stands on
  for (const d of decisions) {
    const { entry } = d;
    const blocker = entry.needs.map((n) => broken.get(n)).find((b) => b !== undefined);
    if (blocker !== undefined) {
      broken.set(entry.name, blocker);
      actions.push({ name: entry.name, action: 'skipped', reason: `depends on ${blocker}, which failed` });
      continue;
    }
    if (d.kind === 'failed') {
      broken.set(entry.name, entry.name);
      actions.push(failure(entry.name, d.error!, 'pulling'));
      continue;
    }
    const reason = d.reasons.join('; ') || undefined;
    const kind = d.kind === 'reinstall' ? 'update' : d.kind;
    if (options.dryRun || d.kind === 'none') {
      actions.push({ name: entry.name, action: kind, ...(reason ? { reason } : {}) });
      continue;
    }
    ctx.report.step(`${entry.name}: ${kind}${reason ? ` (${reason})` : ''}`);
    try {
      const done = await execute(ctx, d, pull, options);
      crashPoint('apply.entry-done');
      actions.push({ name: entry.name, action: done ? kind : 'none', ...(reason ? { reason } : {}) });
    } catch (e) {
      broken.set(entry.name, entry.name);
      actions.push(failure(entry.name, e, d.kind === 'reinstall' ? 'reinstalling (it is no longer installed)' : kind === 'install' ? 'installing' : 'updating'));
    }
  }
  for (const name of prune) {
    if (options.dryRun) {
      actions.push({ name, action: 'uninstall', reason: 'not in the plan (--prune)' });
      continue;
    }
    ctx.report.step(`${name}: uninstall (not in the plan)`);
    try {
      await uninstall(ctx, name);
      actions.push({ name, action: 'uninstall', reason: 'not in the plan (--prune)' });
    } catch (e) {
      actions.push(failure(name, e, 'uninstalling'));
    }
  }

  const failed = actions.filter((a) => a.action === 'failed');
  const skipped = actions.filter((a) => a.action === 'skipped');
  const result: ApplyResult = {
    actions,
    changed: actions.some((a) => a.action === 'install' || a.action === 'update' || a.action === 'uninstall'),
    dryRun: options.dryRun === true,
  };
  if (failed.length > 0) {
    // The first failure's code gives the exit status: a missing image exits 3, a failed start 7.
    result.error = new BerthError(failed[0]!.code ?? 'INTERNAL', `apply: ${failed.length} of ${actions.length} entr${actions.length === 1 ? 'y' : 'ies'} failed (${failed.map((a) => a.name).join(', ')})${skipped.length > 0 ? `; skipped ${skipped.map((a) => a.name).join(', ')}` : ''}`, {
      hint: 'everything else was applied; fix the cause and apply the plan again',
      details: failed.map((a) => `${a.name}: ${a.error}`),
    });
  }
  return result;
}

function failure(name: string, e: unknown, doing: string): ApplyAction {
  const err = e instanceof BerthError ? e : new BerthError('INTERNAL', String((e as Error)?.message ?? e), { hint: 'this is a bug in berth' });
  return { name, action: 'failed', reason: doing, error: err.message, code: err.code };
}

/** Pull every distinct image once, under the lock; a failure is kept per image, not thrown. */
async function pullAll(ctx: OpContext, order: PlanEntry[], pull: PullOptions, policy: PullPolicy): Promise<Map<string, Pulled | BerthError>> {
  const out = new Map<string, Pulled | BerthError>();
  await locked(ctx, 'apply: pull images', async () => {
    const store = await Store.open(ctx.paths.root);
    for (const entry of order) {
      if (out.has(entry.image)) continue;
      try {
        const { image, reference } = await obtainImage(ctx, store, parseImageReference(entry.image), pull, policy);
        out.set(entry.image, { reference: formatReference(reference), manifestDigest: image.manifestDigest });
      } catch (e) {
        if (!(e instanceof BerthError)) throw e;
        ctx.report.warn(`${entry.name}: ${e.message}`);
        out.set(entry.image, e);
      }
    }
  });
  return out;
}

const sh = (cmd: string | undefined) => (cmd === undefined ? undefined : ['/bin/sh', '-c', cmd]);

async function decide(ctx: OpContext, entry: PlanEntry, pulled: Pulled): Promise<Decision> {
  const slot = await ctx.paths.activeSlot(entry.name);
  const info = slot === undefined ? undefined : await readSlotInfo(ctx.paths, entry.name, slot);
  if (info === undefined) return { entry, kind: 'install', reasons: ['not installed'] };
  const reasons: string[] = [];
  let reinstall = false;
  if (pulled.reference !== info.image) reasons.push(`image ${info.image} -> ${pulled.reference}`);
  else if (pulled.manifestDigest !== info.manifestDigest) reasons.push(`new image ${pulled.manifestDigest}`);
  const setDiff = diffSet(info.set, entry.set);
  if (setDiff.changed.length > 0) reasons.push(`set ${setDiff.changed.join(', ')} changed`);
  if (setDiff.removed.length > 0) {
    reasons.push(`set ${setDiff.removed.join(', ')} removed`);
    reinstall = true;
  }
  const health = sh(entry.healthCmd);
  if (JSON.stringify(health ?? null) !== JSON.stringify(info.healthCmd ?? null)) {
    reasons.push(health ? 'healthCmd changed' : 'healthCmd removed');
    if (!health) reinstall = true;
  }
  if (JSON.stringify(entry.ready ?? null) !== JSON.stringify(info.ready ?? null)) reasons.push(entry.ready ? 'ready changed' : 'ready removed');
  // What update() re-renders with is fixed at install: changing these needs a new install.
  const ordering = orderingChanges(info, entry);
  if (ordering.length > 0) {
    reasons.push(`${ordering.join(', ')} changed`);
    reinstall = true;
  }
  if (entry.runtime !== info.runtimeName) {
    reasons.push(`runtime ${info.runtimeName} -> ${entry.runtime}`);
    reinstall = true;
  }
  if (entry.autoUpdate !== (info.autoUpdate === true)) {
    reasons.push(`autoUpdate ${entry.autoUpdate}`);
    reinstall = true;
  }
  if (reasons.length === 0) return { entry, kind: 'none', reasons: [] };
  if (reinstall) reasons.push('reinstalled: update cannot change this');
  return { entry, kind: reinstall ? 'reinstall' : 'update', reasons };
}

function diffSet(old: Readonly<Record<string, string>>, wanted: Readonly<Record<string, string>>): { changed: string[]; removed: string[] } {
  const changed = Object.keys(wanted).filter((k) => old[k] !== wanted[k]).sort();
  const removed = Object.keys(old).filter((k) => !Object.hasOwn(wanted, k)).sort();
  return { changed, removed };
}

function orderingChanges(info: DeploymentInfo, entry: PlanEntry): string[] {
  let recorded: ReturnType<typeof normaliseOrdering> | undefined;
  try {
    recorded = normaliseOrdering(info.ordering ?? {}, `${entry.name}.service`);
  } catch {
    recorded = undefined; // unreadable: treat every field as changed
  }
  const same = (a: readonly string[], b: readonly string[]) => JSON.stringify([...a].sort()) === JSON.stringify([...b].sort());
  return ORDERING_FLAGS.filter(({ field }) => !recorded || !same(recorded[field], entry.ordering[field])).map(({ field }) => field);
}

/** Carry out one decision; returns false when update() found nothing to do after all. */
async function execute(ctx: OpContext, d: Decision, pull: PullOptions, options: ApplyOptions): Promise<boolean> {
  const { entry } = d;
  const image = d.pulled!.reference;
  const health = sh(entry.healthCmd);
  if (d.kind === 'update') {
    // The image is in the store already (pulled above): no second pull, only the trust re-check.
    const r = await update(ctx, entry.name, {
      set: entry.set,
      rebase: image,
      noPull: true,
      pull,
      ...(health ? { healthCmd: health } : {}),
      ready: entry.ready ?? null,
      ...(options.settleMs === undefined ? {} : { settleMs: options.settleMs }),
    });
    ctx.report.step(r.message);
    return r.updated;
  }
  if (d.kind === 'reinstall') await uninstall(ctx, entry.name);
  const r = await install(ctx, {
    image,
    name: entry.name,
    set: entry.set,
    ordering: entry.ordering,
    runtime: entry.runtime,
    pull,
    pullPolicy: 'never',
    noStart: !entry.start,
    ...(health ? { healthCmd: health } : {}),
    ...(entry.ready ? { ready: entry.ready } : {}),
    autoUpdate: entry.autoUpdate,
  });
  ctx.report.step(`${entry.name}: installed ${r.image}${r.unit === undefined ? '' : `, ${r.unit} ${r.activeState}`}`);
  return true;
}
