/** berth rollback: make the other slot live again (unit, tmpfiles, host files), restarting a running container. */
import { BerthError } from '../errors.ts';
import { crashPoint } from '../crashpoint.ts';
import { Journal } from '../deploy/intent.ts';
import { checkName } from '../deploy/paths.ts';
import { withSystemd } from '../systemd/session.ts';
import type { OpContext } from './context.ts';
import { locked } from './locked.ts';
import { readSlotInfo } from './deployment.ts';
import { requireRoot } from './require-root.ts';
import { loadSlot, switchSlots } from './switch.ts';

export interface RollbackResult {
  name: string;
  image: string;
  manifestDigest: string;
  slot: 0 | 1;
}

export async function rollback(ctx: OpContext, name: string): Promise<RollbackResult> {
  requireRoot('rollback');
  checkName(name);
  return locked(ctx, `rollback ${name}`, async () => {
    const { paths } = ctx;
    const slot = await paths.activeSlot(name);
    if (slot === undefined) throw new BerthError('NOT_INSTALLED', `container ${name} is not installed`, { hint: 'berth list shows what is installed' });
    const other: 0 | 1 = slot === 0 ? 1 : 0;
    if (!(await readSlotInfo(paths, name, other))) {
      throw new BerthError('NOT_INSTALLED', `${name} has no other deployment to roll back to`, { hint: 'rollback needs an earlier update; berth status shows both slots' });
    }
    const from = await loadSlot(ctx, name, slot);
    const to = await loadSlot(ctx, name, other);
    // Recovery from a kill switches back to `slot` (once switchSlots has recorded the unit's state); both slots stay.
    const journal = new Journal(paths.root, { op: 'rollback', name, phase: 'stage', fromSlot: slot, toSlot: other, newSlot: false });
    await journal.write();
    crashPoint('deploy.intent-written');
    await withSystemd(async (systemd) => {
      const wasActive = from.info.hasUnit && (await systemd.unitState(paths.unitName(name))).activeState === 'active';
      await switchSlots(ctx, systemd, from, slot, to, other, journal, { start: wasActive, settleMs: 0 });
    }).finally(() => journal.done());
    return { name, image: to.info.image, manifestDigest: to.info.manifestDigest, slot: other };
  });
}
