/**
 * berth agent: berth's operations on the system bus for other programs
 * (management agents, cockpit-like UIs). Every call runs the same ops code
 * as the CLI, under the same state lock. State-changing methods check the
 * caller's UID with the bus daemon; the bus policy file is the first fence,
 * this is the second.
 */
import { BerthError } from '../errors.ts';
import type { OpContext } from '../ops/context.ts';
import { locked } from '../ops/locked.ts';
import type { PullOptions } from '../ops/pull.ts';
import { BusMethodError, SystemBus, type MethodCall } from '../systemd/bus.ts';
import { BUS_NAME, INTERFACE, INTROSPECTION, OBJECT_PATH, PRIVILEGED } from './interface.ts';

export interface AgentOptions {
  /** Where images come from and which trust policy applies to Install/Update. */
  pull: PullOptions;
}

export async function runAgent(ctx: OpContext, options: AgentOptions): Promise<void> {
  // At boot, before any caller: whatever a berth killed by the power cut left half-done is put right now.
  await locked(ctx, 'agent start', async () => undefined).catch((e: unknown) => ctx.report.warn(`recovery at start failed: ${(e as Error).message}`));
  const bus = await SystemBus.connect();
  const changed = (name: string, event: string) => bus.emitSignal(OBJECT_PATH, INTERFACE, 'ContainerChanged', 'ss', [name, event]);
  bus.serve(OBJECT_PATH, async (call) => dispatch(ctx, options, bus, call, changed));
  await bus.requestName(BUS_NAME);
  ctx.report.step(`berth agent: serving ${BUS_NAME} at ${OBJECT_PATH}`);
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
  bus.disconnect();
  ctx.report.step('berth agent: stopped');
}

const str = (call: MethodCall, i: number): string => {
  const v = call.body[i];
  if (typeof v !== 'string') throw new BusMethodError('org.freedesktop.DBus.Error.InvalidArgs', `argument ${i + 1} of ${call.member} must be a string`);
  return v;
};

async function dispatch(ctx: OpContext, options: AgentOptions, bus: SystemBus, call: MethodCall, changed: (name: string, event: string) => void): Promise<[string, unknown[]]> {
  if (call.interface === 'org.freedesktop.DBus.Introspectable' && call.member === 'Introspect') return ['s', [INTROSPECTION]];
  if (call.interface === 'org.freedesktop.DBus.Peer' && call.member === 'Ping') return ['', []];
  if (call.interface !== INTERFACE && call.interface !== '') {
    throw new BusMethodError('org.freedesktop.DBus.Error.UnknownInterface', `no interface ${call.interface} at ${OBJECT_PATH}`);
  }
  if (PRIVILEGED.has(call.member) && (await bus.callerUid(call.sender)) !== 0) {
    throw new BusMethodError('org.freedesktop.DBus.Error.AccessDenied', `${call.member} needs root (call it as root; List and Status are open to every user)`);
  }
  const json = (v: unknown): [string, unknown[]] => ['s', [JSON.stringify(v)]];
  try {
    switch (call.member) {
      case 'List':
        return json(await (await import('../ops/list.ts')).list(ctx));
      case 'Status':
        return json(await (await import('../ops/status.ts')).status(ctx, str(call, 0)));
      case 'Install': {
        const { install } = await import('../ops/install.ts');
        const { parseSetOptions } = await import('../render/values.ts');
        const set = call.body[2];
        if (!Array.isArray(set) || set.some((s) => typeof s !== 'string')) throw new BusMethodError('org.freedesktop.DBus.Error.InvalidArgs', 'set must be a list of KEY=VALUE strings');
        const name = str(call, 1);
        const r = await install(ctx, { image: str(call, 0), ...(name === '' ? {} : { name }), set: parseSetOptions(set as string[]), pull: options.pull });
        changed(r.name, 'installed');
        return json(r);
      }
      case 'Update': {
        const r = await (await import('../ops/update.ts')).update(ctx, str(call, 0), { pull: options.pull });
        if (r.updated) changed(r.name, 'updated');
        return json(r);
      }
      case 'Rollback': {
        const r = await (await import('../ops/rollback.ts')).rollback(ctx, str(call, 0));
        changed(r.name, 'rolled-back');
        return json(r);
      }
      case 'Uninstall': {
        const r = await (await import('../ops/uninstall.ts')).uninstall(ctx, str(call, 0));
        if (r.removed) changed(r.name, 'uninstalled');
        return json(r);
      }
      default:
        throw new BusMethodError('org.freedesktop.DBus.Error.UnknownMethod', `no method ${call.member} in ${INTERFACE}`);
    }
  } catch (e) {
    if (e instanceof BerthError) throw new BusMethodError(`org.berth.Error.${e.code}`, `${e.message}${e.hint ? ` (${e.hint})` : ''}`);
    throw e;
  }
}
