/**
 * A stack update: several containers updated as one transaction (berth
 * apply, berth update --all).
 *
 *   1. stage: every new deployment is checked out, rendered and committed
 *      into its container's other slot; nothing live changes;
 *   2. switch, in dependency order, each gated like an update (start job
 *      done, which for Type=notify or readiness probes means ready; active
 *      through the settle period; health command). Before a member switches,
 *      its active dependents are stopped, so that each is started once, when
 *      what it needs is in place, instead of restarted with every switch;
 *   3. finish: the stopped dependents are started, in dependency order.
 *
 * If a member fails (or a dependent does not start again), every member
 * goes back to its previous slot, last first, and what ran before is
 * restarted or started once, in dependency order (ops/switch-back.ts). One
 * write-ahead record (@stack.json) covers it all: recovery after a kill does
 * the same rollback.
 *
 * The caller holds the state lock throughout: recovery would take a live
 * stack's record for a dead one's.
 */
import { crashPoint } from '../crashpoint.ts';
import { BerthError } from '../errors.ts';
import { StackJournal } from '../deploy/intent.ts';
import type { Store } from '../store/store.ts';
import type { SystemdManager } from '../systemd/manager.ts';
import type { OpContext } from './context.ts';
import { commit, stage, Undo, type DeploySpec, type Staged } from './deployment.ts';
import { startAndCheck } from './unit-steps.ts';
import { dependencyOrder, unitsToStop } from './stack-plan.ts';
import { activeAmong, installedGraph, rollBackStack } from './switch-back.ts';
import { loadSlot, switchSlots } from './switch.ts';

const JOB_TIMEOUT_MS = 120_000;

export interface StackMember {
  name: string;
  /** The live slot; the new deployment goes into the other one. */
  fromSlot: 0 | 1;
  spec: DeploySpec;
}

export interface StackOptions {
  /** Names the transaction in messages and its record (apply, update --all). */
  op: string;
  settleMs: number;
  startTimeoutMs?: number;
}

interface MemberState {
  member: StackMember;
  toSlot: 0 | 1;
  staged?: Staged;
  wasActive: boolean;
}

export class StackUpdate {
  private readonly journal: StackJournal;
  private readonly members = new Map<string, MemberState>();
  private rolledBack = false;

  constructor(
    private readonly ctx: OpContext,
    private readonly systemd: SystemdManager,
    private readonly options: StackOptions,
    members: StackMember[],
  ) {
    for (const m of members) this.members.set(m.name, { member: m, toSlot: m.fromSlot === 0 ? 1 : 0, wasActive: false });
    this.journal = new StackJournal(
      ctx.paths.root,
      options.op,
      members.map((m) => ({ op: 'update', name: m.name, phase: 'stage', fromSlot: m.fromSlot, toSlot: m.fromSlot === 0 ? 1 : 0, newSlot: true })),
    );
  }

  get names(): string[] {
    return [...this.members.keys()];
  }

  /**
   * Stage and commit every member. On failure nothing live has changed: the
   * new slots are dropped, the record removed, and the member that failed
   * is named.
   */
  async stageAll(store: Store): Promise<{ failed: string; error: BerthError } | undefined> {
    const { ctx, systemd } = this;
    // Whether each ran is read before anything is stopped: that is what runs again afterwards.
    for (const [name, st] of this.members) {
      const s = await systemd.unitState(ctx.paths.unitName(name));
      st.wasActive = s.activeState === 'active' || s.activeState === 'activating';
    }
    await this.journal.write();
    crashPoint('stack.intent-written');
    for (const [name, st] of this.members) {
      const undo = new Undo();
      try {
        st.staged = await stage(ctx, store, st.member.spec, undo, st.toSlot);
        await commit(ctx.paths, st.staged, st.toSlot, undo, this.journal.member(name));
      } catch (e) {
        await undo.run(ctx.report);
        await this.rollback();
        return { failed: name, error: asBerthError(e) };
      }
    }
    crashPoint('stack.staged');
    return undefined;
  }

  /** Switch one member (in dependency order, after its dependents are stopped); throws when it fails. The caller then rolls back. */
  async switchMember(name: string): Promise<void> {
    const { ctx, systemd } = this;
    const st = this.members.get(name)!;
    await this.stopDependents([name]);
    const from = await loadSlot(ctx, name, st.member.fromSlot);
    await switchSlots(ctx, systemd, from, st.member.fromSlot, st.staged!, st.toSlot, this.journal.member(name), {
      start: st.wasActive,
      settleMs: this.options.settleMs,
      noSwitchBack: true,
      ...(this.options.startTimeoutMs === undefined ? {} : { startTimeoutMs: this.options.startTimeoutMs }),
    });
    crashPoint('stack.switched');
  }

  /**
   * Every member switched: start the dependents stopped on the way, in
   * dependency order, and drop the record. A dependent that does not start
   * fails the stack: it is rolled back (the error says which).
   */
  async finish(): Promise<BerthError | undefined> {
    const { ctx, systemd } = this;
    const graph = await installedGraph(ctx);
    const active = await activeAmong(ctx, systemd, this.journal.intent.stopped);
    for (const name of dependencyOrder(graph, this.journal.intent.stopped).filter((n) => !active.has(n))) {
      const unit = ctx.paths.unitName(name);
      ctx.report.step(`Starting ${unit} again`);
      try {
        await startAndCheck(systemd, unit, this.options.startTimeoutMs ?? JOB_TIMEOUT_MS, 'the stack is rolled back');
      } catch (e) {
        const err = asBerthError(e);
        await this.rollback();
        return new BerthError('UPDATE_FAILED', `${unit} did not start again after ${this.names.join(', ')} changed: ${err.message}`, {
          hint: 'every container of the stack was put back; the journal lines below say why',
          details: err.details,
        });
      }
    }
    crashPoint('stack.finished');
    await this.journal.done();
    return undefined;
  }

  /** Put every member back and bring up what ran, each once. Returns the units that did not come back. */
  async rollback(): Promise<BerthError[]> {
    if (this.rolledBack) return [];
    this.rolledBack = true;
    const { ctx, systemd } = this;
    ctx.report.step(`Putting back ${this.names.join(', ')}`);
    const { failures } = await rollBackStack(ctx, systemd, this.journal.intent, (units) => this.journal.stopping(units));
    await this.journal.done();
    return failures;
  }

  /** Stop the active dependents of `names` not stopped yet (dependents first), recorded before. */
  private async stopDependents(names: string[]): Promise<void> {
    const { ctx, systemd } = this;
    const graph = await installedGraph(ctx);
    const active = await activeAmong(ctx, systemd, graph.keys());
    const stop = unitsToStop(graph, names, active, this.journal.intent.stopped);
    await this.journal.stopping(stop);
    for (const n of stop) {
      ctx.report.step(`Stopping ${ctx.paths.unitName(n)} until ${names.join(', ')} is switched`);
      await systemd.stopUnit(ctx.paths.unitName(n), JOB_TIMEOUT_MS);
    }
  }
}

function asBerthError(e: unknown): BerthError {
  return e instanceof BerthError ? e : new BerthError('INTERNAL', String((e as Error)?.message ?? e), { hint: 'this is a bug in berth' });
}
