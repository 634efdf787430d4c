/**
 * The lock step every state change goes through. It sits above recovery
 * (locked -> recover -> the steps recovery reuses), so operations import it
 * and recovery never imports an operation that takes the lock.
 */
import type { OpContext } from './context.ts';

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
