/**
 * berth apply: make the host match a plan (see plan.ts, docs/plan.md).
 *
 *   1. the plan is validated whole (plan.ts) before anything else;
 *   2. every image is pulled and trust-checked, under the lock, before any
 *      container changes;
 *   3. each entry is compared with what is installed. The updates are one
 *      stack (ops/stack.ts): all staged first, then switched in dependency
 *      order, and all put back if one fails. Installs happen in their place
 *      in the order, each on its own; --prune uninstalls the rest.
 *
 * The lock is held throughout (the Locked variants of install and
 * uninstall). An install that fails undoes itself; what depends on a failed
 * or rolled back entry is skipped, everything else is still applied.
 */
import fs from 'node:fs/promises';
import { crashPoint } from '../crashpoint.ts';
import { BerthError, errnoCode, type ErrorCode } from '../errors.ts';
import { formatReference, parseImageReference } from '../transport/index.ts';
import type { DeploymentInfo } from '../deploy/info.ts';
import { checkName } from '../deploy/paths.ts';
import { normaliseOrdering, ORDERING_FLAGS } from '../render/ordering.ts';
import { Store } from '../store/store.ts';
import type { SystemdManager } from '../systemd/manager.ts';
import { withSystemd } from '../systemd/session.ts';
import type { OpContext } from './context.ts';
import { locked } from './locked.ts';
import { readSlotInfo } from './deployment.ts';
import { installLocked } from './install.ts';
import { obtainImage, type PullPolicy } from './obtain.ts';
import { applyOrder, parsePlan, type Plan, type PlanEntry } from './plan.ts';
import type { PullOptions } from './pull.ts';
import { requireRoot } from './require-root.ts';
import { StackUpdate, type StackMember } from './stack.ts';
import { uninstallLocked } from './teardown.ts';
import { DEFAULT_SETTLE_MS, installedNames, prepareUpdate } from './update.ts';

export type ApplyActionKind = 'install' | 'update' | 'uninstall' | 'none' | 'skipped' | 'failed';

/** What became of an entry: installed, updated, unchanged, rolled back (its update, or the stack it was part of, failed), uninstalled. */
export type ApplyResultKind = 'installed' | 'updated' | 'unchanged' | 'rolled back' | 'uninstalled';

export interface ApplyAction {
  name: string;
  /** What apply decided to do. */
  action: ApplyActionKind;
  /** What became of it (not with --dry-run; absent for skipped and failed entries). */
  result?: ApplyResultKind;
  /** The unit's state read back from systemd at the end. */
  state?: { activeState: string; subState: string };
  /** Why (what differs), or what was done. */
  reason?: string;
  /** The failure, for action "failed". */
  error?: string;
  code?: ErrorCode;
  /** What else the failure says (the unit's journal lines). */
  details?: readonly string[];
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
  /** Settle period of updates (default: update's, 5 s). */
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
  // One lock for the whole apply: the stack update's record must not look like a dead berth's to another one.
  return locked(ctx, 'apply', () => applyLocked(ctx, plan, options));
}

async function applyLocked(ctx: OpContext, plan: Plan, options: ApplyOptions): Promise<ApplyResult> {
  const pull: PullOptions = {
    ...options.pull,
    // The command line wins over the plan's defaults.
    source: { ...(plan.defaults.tlsVerify === undefined ? {} : { tlsVerify: plan.defaults.tlsVerify }), ...options.pull.source },
  };
  const order = applyOrder(plan);
  const store = await Store.open(ctx.paths.root);
  const pulled = await pullAll(ctx, store, order, pull, options.pullPolicy ?? 'missing');

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

  if (options.dryRun) {
    const actions: ApplyAction[] = [];
    const broken = new Map<string, string>();
    for (const d of decisions) {
      const blocker = blockerOf(d.entry, broken);
      if (blocker !== undefined) {
        broken.set(d.entry.name, blocker);
        actions.push({ name: d.entry.name, action: 'skipped', reason: `depends on ${blocker}, which failed` });
      } else if (d.kind === 'failed') {
        broken.set(d.entry.name, d.entry.name);
        actions.push(failure(d.entry.name, d.error!, 'pulling'));
      } else {
        const reason = d.reasons.join('; ');
        actions.push({ name: d.entry.name, action: d.kind === 'reinstall' ? 'update' : d.kind, ...(reason ? { reason } : {}) });
      }
    }
    for (const name of prune) actions.push({ name, action: 'uninstall', reason: 'not in the plan (--prune)' });
    return summarise(actions, true);
  }
  return withSystemd((systemd) => execute(ctx, systemd, store, decisions, prune, pull, options));
}

function blockerOf(entry: PlanEntry, broken: ReadonlyMap<string, string>): string | undefined {
  return entry.needs.map((n) => broken.get(n)).find((b) => b !== undefined);
}

/**
 * Carry out the decisions: updates as one stack (staged first, switched in
 * order, all rolled back if one fails), installs and reinstalls in their
 * place in the order, each on its own as before.
 */
async function execute(
  ctx: OpContext,
  systemd: SystemdManager,
  store: Store,
  decisions: Decision[],
  prune: string[],
  pull: PullOptions,
  options: ApplyOptions,
): Promise<ApplyResult> {
  const actions = new Map<string, ApplyAction>();
  const broken = new Map<string, string>(); // entry -> the failed entry it stands on
  const fail = (name: string, e: unknown, doing: string) => {
    broken.set(name, name);
    actions.set(name, failure(name, e, doing));
  };

  // Which updates change something (update() would say "up to date" otherwise), and their new deployments.
  const members: StackMember[] = [];
  for (const d of decisions) {
    const { entry } = d;
    const blocker = blockerOf(entry, broken);
    if (blocker !== undefined) {
      broken.set(entry.name, blocker);
      actions.set(entry.name, { name: entry.name, action: 'skipped', reason: `depends on ${blocker}, which failed` });
    } else if (d.kind === 'failed') {
      fail(entry.name, d.error!, 'pulling');
    } else if (d.kind === 'update') {
      try {
        const health = sh(entry.healthCmd);
        // The image is in the store already (pulled above): no second pull, only the trust re-check.
        const p = await prepareUpdate(ctx, store, entry.name, { set: entry.set, rebase: d.pulled!.reference, noPull: true, pull, ...(health ? { healthCmd: health } : {}), ready: entry.ready ?? null, ...(entry.runtime === undefined ? {} : { runtime: entry.runtime }) });
        if (p.same) d.kind = 'none';
        else members.push({ name: entry.name, fromSlot: p.slot, spec: p.spec });
      } catch (e) {
        fail(entry.name, e, 'updating');
      }
    }
  }

  const stack = new StackUpdate(ctx, systemd, { op: 'apply', settleMs: options.settleMs ?? DEFAULT_SETTLE_MS }, members);
  const rollBack = async (failed: string, error: BerthError, doing: string) => {
    const notUp = await stack.rollback();
    for (const m of members) {
      broken.set(m.name, failed);
      const d = decisions.find((x) => x.entry.name === m.name)!;
      const why = m.name === failed ? '' : `; ${failed} failed`;
      const own = m.name === failed ? { error: error.message, code: error.code, ...(error.details?.length ? { details: error.details } : {}) } : {};
      actions.set(m.name, { name: m.name, action: 'update', reason: `${d.reasons.join('; ')}${why}`, result: 'rolled back', ...own });
    }
    if (!members.some((m) => m.name === failed)) fail(failed, error, doing);
    for (const e of notUp) ctx.report.warn(`after the rollback: ${e.message}`);
  };
  let stackFailed = false;
  if (members.length > 0) {
    ctx.report.step(`Staging ${members.map((m) => m.name).join(', ')}`);
    const staged = await stack.stageAll(store);
    if (staged) {
      stackFailed = true;
      await rollBack(staged.failed, staged.error, 'staging');
    }
  }

  for (const d of decisions) {
    const { entry } = d;
    if (actions.has(entry.name)) continue; // failed, skipped or rolled back already
    const blocker = blockerOf(entry, broken);
    if (blocker !== undefined) {
      broken.set(entry.name, blocker);
      actions.set(entry.name, { name: entry.name, action: 'skipped', reason: `depends on ${blocker}, which failed` });
      continue;
    }
    const reason = d.reasons.join('; ') || undefined;
    if (d.kind === 'none') {
      actions.set(entry.name, { name: entry.name, action: 'none', result: 'unchanged' });
      continue;
    }
    const kind = d.kind === 'reinstall' || d.kind === 'update' ? 'update' : 'install';
    ctx.report.step(`${entry.name}: ${kind}${reason ? ` (${reason})` : ''}`);
    if (d.kind === 'update') {
      try {
        await stack.switchMember(entry.name);
        actions.set(entry.name, { name: entry.name, action: 'update', ...(reason ? { reason } : {}), result: 'updated' });
      } catch (e) {
        stackFailed = true;
        await rollBack(entry.name, asError(e), 'updating');
      }
    } else {
      try {
        if (d.kind === 'reinstall') await uninstallLocked(ctx, entry.name, {});
        await installEntry(ctx, d, pull);
        actions.set(entry.name, { name: entry.name, action: kind, ...(reason ? { reason } : {}), result: kind === 'install' ? 'installed' : 'updated' });
      } catch (e) {
        fail(entry.name, e, d.kind === 'reinstall' ? 'reinstalling (it is no longer installed)' : 'installing');
      }
    }
    crashPoint('apply.entry-done');
  }
  if (members.length > 0 && !stackFailed) {
    const err = await stack.finish();
    if (err) await rollBack(members[members.length - 1]!.name, err, 'updating');
  }

  for (const name of prune) {
    ctx.report.step(`${name}: uninstall (not in the plan)`);
    try {
      await uninstallLocked(ctx, name, {});
      actions.set(name, { name, action: 'uninstall', reason: 'not in the plan (--prune)', result: 'uninstalled' });
    } catch (e) {
      actions.set(name, failure(name, e, 'uninstalling'));
    }
  }

  // The final state, as systemd reports it: what the user gets, whatever the actions say.
  const ordered = [...decisions.map((d) => actions.get(d.entry.name)!), ...prune.map((n) => actions.get(n)!)];
  for (const a of ordered) {
    if (a.result === 'uninstalled') continue;
    const s = await systemd.unitState(ctx.paths.unitName(a.name));
    if (s.loadState !== 'not-found') a.state = { activeState: s.activeState, subState: s.subState };
  }
  return summarise(ordered, false);
}

function summarise(actions: ApplyAction[], dryRun: boolean): ApplyResult {
  const failed = actions.filter((a) => a.error !== undefined);
  const skipped = actions.filter((a) => a.action === 'skipped');
  const rolledBack = actions.filter((a) => a.result === 'rolled back');
  const result: ApplyResult = {
    actions,
    changed: actions.some((a) => (a.action === 'install' || a.action === 'update' || a.action === 'uninstall') && a.result !== 'rolled back'),
    dryRun,
  };
  if (failed.length > 0) {
    // The first failure's code gives the exit status: a missing image exits 3, a failed start or a rolled back stack 7.
    const first = rolledBack.find((a) => a.error !== undefined) ?? failed[0]!;
    const parts = [
      `${failed.length} of ${actions.length} entr${actions.length === 1 ? 'y' : 'ies'} failed (${failed.map((a) => a.name).join(', ')})`,
      ...(rolledBack.length > 0 ? [`rolled back ${rolledBack.map((a) => a.name).join(', ')}`] : []),
      ...(skipped.length > 0 ? [`skipped ${skipped.map((a) => a.name).join(', ')}`] : []),
    ];
    result.error = new BerthError(first.code === 'START_FAILED' && first.result === 'rolled back' ? 'UPDATE_FAILED' : (first.code ?? 'INTERNAL'), `apply: ${parts.join('; ')}`, {
      hint: rolledBack.length > 0 ? 'the updated containers run their previous versions again; fix the cause and apply the plan again' : 'everything else was applied; fix the cause and apply the plan again',
      details: failed.flatMap((a) => [`${a.name}: ${a.error}`, ...(a.details ?? []).map((l) => `  ${l}`)]),
    });
  }
  return result;
}

function asError(e: unknown): BerthError {
  return e instanceof BerthError ? e : new BerthError('INTERNAL', String((e as Error)?.message ?? e), { hint: 'this is a bug in berth' });
}

function failure(name: string, e: unknown, doing: string): ApplyAction {
  const err = e instanceof BerthError ? e : new BerthError('INTERNAL', String((e as Error)?.message ?? e), { hint: 'this is a bug in berth' });
  return { name, action: 'failed', reason: doing, error: err.message, code: err.code, ...(err.details?.length ? { details: err.details } : {}) };
}

/** Pull every distinct image once, under the lock; a failure is kept per image, not thrown. */
async function pullAll(ctx: OpContext, store: Store, order: PlanEntry[], pull: PullOptions, policy: PullPolicy): Promise<Map<string, Pulled | BerthError>> {
  const out = new Map<string, Pulled | BerthError>();
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
  // No runtime in the plan: the one chosen at install (the image's label, or runc) stays.
  if (entry.runtime !== undefined && entry.runtime !== info.runtimeName) reasons.push(`runtime ${info.runtimeName} -> ${entry.runtime}`);
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

/** Install an entry (not installed, or uninstalled for a reinstall); the image is in the store. */
async function installEntry(ctx: OpContext, d: Decision, pull: PullOptions): Promise<void> {
  const { entry } = d;
  const health = sh(entry.healthCmd);
  const r = await installLocked(
    ctx,
    {
      image: d.pulled!.reference,
      name: entry.name,
      set: entry.set,
      ordering: entry.ordering,
      ...(entry.runtime === undefined ? {} : { runtime: entry.runtime }),
      pull,
      pullPolicy: 'never',
      noStart: !entry.start,
      ...(health ? { healthCmd: health } : {}),
      ...(entry.ready ? { ready: entry.ready } : {}),
      autoUpdate: entry.autoUpdate,
    },
    parseImageReference(d.pulled!.reference),
    checkName(entry.name),
  );
  ctx.report.step(`${entry.name}: installed ${r.image}${r.unit === undefined ? '' : `, ${r.unit} ${r.activeState}`}`);
}
