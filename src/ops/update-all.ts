/**
 * berth update --all [--auto] (the auto-update timer's job): every installed
 * container (or those opted in) pulled again, and those with something new
 * updated as one stack (ops/stack.ts) in the dependency order of their
 * recorded ordering: all staged, switched in order, all put back if one fails.
 */
import { BerthError } from '../errors.ts';
import { Store } from '../store/store.ts';
import { withSystemd } from '../systemd/session.ts';
import type { OpContext } from './context.ts';
import { locked } from './locked.ts';
import { readSlotInfo } from './deployment.ts';
import { requireRoot } from './require-root.ts';
import { StackUpdate, type StackMember } from './stack.ts';
import { dependencyOrder } from './stack-plan.ts';
import { installedGraph } from './switch-back.ts';
import { DEFAULT_SETTLE_MS, installedNames, prepareUpdate, type UpdateOptions } from './update.ts';

export interface UpdateAllEntry {
  name: string;
  result: 'updated' | 'unchanged' | 'rolled back' | 'failed';
  message: string;
  /** The live image after the run. */
  image?: string;
  manifestDigest?: string;
  state?: { activeState: string; subState: string };
  error?: string;
}

export interface UpdateAllResult {
  results: UpdateAllEntry[];
  /** Set when anything failed or was rolled back: the process exits with it. */
  error?: BerthError;
}

export async function updateAll(ctx: OpContext, autoOnly: boolean, options: UpdateOptions): Promise<UpdateAllResult> {
  requireRoot('update');
  return locked(ctx, `update --all${autoOnly ? ' --auto' : ''}`, async () => {
    const graph = await installedGraph(ctx);
    const names = dependencyOrder(graph, await installedNames(ctx, autoOnly));
    const store = await Store.open(ctx.paths.root);
    const results = new Map<string, UpdateAllEntry>();
    const members: StackMember[] = [];
    for (const name of names) {
      try {
        const p = await prepareUpdate(ctx, store, name, options);
        if (p.same) results.set(name, { name, result: 'unchanged', message: `${name} is up to date (${p.info.image} ${p.info.manifestDigest})` });
        else members.push({ name, fromSlot: p.slot, spec: p.spec });
      } catch (e) {
        if (!(e instanceof BerthError)) throw e;
        ctx.report.warn(`${name}: ${e.message}`);
        results.set(name, { name, result: 'failed', message: e.message, error: e.message });
      }
    }
    return withSystemd(async (systemd) => {
      let failure: { name: string; error: BerthError } | undefined;
      if (members.length > 0) {
        const stack = new StackUpdate(ctx, systemd, { op: 'update --all', settleMs: options.settleMs ?? DEFAULT_SETTLE_MS }, members);
        const staged = await stack.stageAll(store);
        if (staged) failure = { name: staged.failed, error: staged.error };
        for (const m of failure ? [] : members) {
          ctx.report.step(`Updating ${m.name}`);
          try {
            await stack.switchMember(m.name);
          } catch (e) {
            failure = { name: m.name, error: e instanceof BerthError ? e : new BerthError('INTERNAL', String(e), { hint: 'this is a bug in berth' }) };
            await stack.rollback();
            break;
          }
        }
        if (!failure) {
          const err = await stack.finish();
          if (err) failure = { name: members[members.length - 1]!.name, error: err };
        }
        for (const m of members) {
          const failed = failure?.name === m.name;
          results.set(m.name, failure
            ? { name: m.name, result: 'rolled back', message: failed ? `update of ${m.name} failed and was rolled back: ${failure.error.message}` : `${m.name} rolled back: the update of ${failure.name} failed`, ...(failed ? { error: failure.error.message } : {}) }
            : { name: m.name, result: 'updated', message: `${m.name} updated to ${m.spec.image.manifestDigest} in slot ${m.fromSlot === 0 ? 1 : 0}` });
        }
      }
      const ordered = names.map((n) => results.get(n)!);
      for (const r of ordered) {
        const slot = await ctx.paths.activeSlot(r.name);
        const info = slot === undefined ? undefined : await readSlotInfo(ctx.paths, r.name, slot);
        if (info) Object.assign(r, { image: info.image, manifestDigest: info.manifestDigest });
        const s = await systemd.unitState(ctx.paths.unitName(r.name));
        if (s.loadState !== 'not-found') r.state = { activeState: s.activeState, subState: s.subState };
      }
      const bad = ordered.filter((r) => r.error !== undefined);
      const rolled = ordered.filter((r) => r.result === 'rolled back');
      const result: UpdateAllResult = { results: ordered };
      if (bad.length > 0) {
        result.error = new BerthError('UPDATE_FAILED', `${bad.length} of ${names.length} update(s) failed${rolled.length > 0 ? `; rolled back ${rolled.map((r) => r.name).join(', ')}` : ''}`, {
          hint: 'the containers run their previous versions; see the messages above',
          details: bad.map((r) => `${r.name}: ${r.error}`),
        });
      }
      return result;
    });
  });
}
