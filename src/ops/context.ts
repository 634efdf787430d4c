/** What every operation gets: where things are, and how to talk to the user. */
import { Paths } from '../deploy/paths.ts';

export interface Reporter {
  /** Progress for people (stderr); silent with --quiet or --json. */
  step(message: string): void;
  warn(message: string): void;
  /**
   * A status line for one task (a layer) that changes over time: a terminal
   * redraws it in place; `final` marks its last text. Optional: reporters
   * without it get only step() lines.
   */
  progress?(id: string, text: string, final?: boolean, bytes?: { done: number; total: number }): void;
}

export interface OpContext {
  paths: Paths;
  report: Reporter;
  /** How long to wait for the state lock; undefined waits forever. */
  lockTimeoutMs?: number;
}

export const silentReporter: Reporter = { step() {}, warn() {} };

export function defaultContext(root: string | undefined, report: Reporter, lockTimeoutMs?: number): OpContext {
  return { paths: new Paths(root), report, ...(lockTimeoutMs === undefined ? {} : { lockTimeoutMs }) };
}

/**
 * Run a state change under berth's one lock, telling the user when it has to
 * wait. Whatever a berth that died holding the lock left half-done is
 * recovered first (ops/recover.ts), so every operation starts from a state
 * that is "before" or "after" some earlier one, never between. (`recover:
 * false`: the caller runs recovery itself, to report it.)
 */
export async function locked<T>(ctx: OpContext, what: string, fn: () => Promise<T>, options: { recover?: boolean } = {}): Promise<T> {
  const { withLock } = await import('../deploy/lock.ts');
  return withLock(
    ctx.paths.root,
    what,
    {
      ...(ctx.lockTimeoutMs === undefined ? {} : { timeoutMs: ctx.lockTimeoutMs }),
      onWait: (owner) => ctx.report.warn(`waiting for the lock held by pid ${owner?.pid ?? '?'} (${owner?.what ?? 'unknown'})`),
    },
    async () => {
      if (options.recover !== false) await (await import('./recover.ts')).recover(ctx);
      return fn();
    },
  );
}
