/**
 * A thin, typed wrapper around dbus-next for the system bus.
 *
 * dbus-next always sends Hello, and when that fails it rethrows inside a
 * promise nobody holds: an unhandled rejection that kills Node. We swallow
 * exactly those (their stack is dbus-next's bus.js) and report the failure
 * through connect() instead.
 */
import type { Message as DBusMessage, MessageBus } from 'dbus-next';
import { BerthError } from '../errors.ts';

const CONNECT_TIMEOUT_MS = 10_000;

let guardInstalled = false;
function installRejectionGuard(): void {
  if (guardInstalled) return;
  guardInstalled = true;
  process.on('unhandledRejection', (reason) => {
    if (reason instanceof Error && /dbus-next[\\/]lib[\\/]bus\.js/.test(reason.stack ?? '')) return;
    // Not ours: keep Node's default behaviour (crash loudly).
    throw reason;
  });
}

export type DBusValue = unknown;

export interface SignalMessage {
  path: string;
  interface: string;
  member: string;
  body: DBusValue[];
}

export class SystemBus {
  private readonly bus: MessageBus;
  private readonly dbus: typeof import('dbus-next');
  private readonly signalListeners = new Set<(msg: SignalMessage) => void>();

  private constructor(bus: MessageBus, dbus: typeof import('dbus-next')) {
    this.bus = bus;
    this.dbus = dbus;
    bus.on('message', (msg: DBusMessage) => {
      if (msg.type !== dbus.MessageType.SIGNAL) return;
      const signal: SignalMessage = { path: msg.path, interface: msg.interface, member: msg.member, body: msg.body as DBusValue[] };
      for (const listener of this.signalListeners) listener(signal);
    });
  }

  /** Connect to the system bus ($DBUS_SYSTEM_BUS_ADDRESS or the standard socket). */
  static async connect(): Promise<SystemBus> {
    installRejectionGuard();
    const dbus = (await import('dbus-next')).default;
    const address = process.env['DBUS_SYSTEM_BUS_ADDRESS'] ?? 'unix:path=/var/run/dbus/system_bus_socket';
    const bus = dbus.systemBus();
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => fail(new Error('timed out')), CONNECT_TIMEOUT_MS);
      const fail = (e: unknown) => {
        clearTimeout(timer);
        bus.disconnect();
        reject(
          new BerthError('NO_SYSTEM_BUS', `cannot connect to the system bus at ${address}: ${(e as Error)?.message ?? String(e)}`, {
            hint: 'berth needs systemd and dbus running (is this a systemd host? are you root?)',
            cause: e,
          }),
        );
      };
      bus.once('connect', () => {
        clearTimeout(timer);
        bus.removeListener('error', fail);
        // Later transport errors surface as failed calls; keep them from crashing the process.
        bus.on('error', () => {});
        resolve();
      });
      bus.once('error', fail);
    });
    return new SystemBus(bus, dbus);
  }

  /** Call a method; returns the reply body. D-Bus errors become SYSTEMD_ERROR unless mapped by the caller. */
  async call(destination: string, path: string, iface: string, member: string, signature = '', body: DBusValue[] = []): Promise<DBusValue[]> {
    const msg = new this.dbus.Message({ destination, path, interface: iface, member, signature, body });
    const reply = await this.bus.call(msg);
    return (reply?.body ?? []) as DBusValue[];
  }

  /** Receive signals matching `rule` (an AddMatch rule) until the returned function is called. */
  async onSignal(rule: string, listener: (msg: SignalMessage) => void): Promise<() => Promise<void>> {
    this.signalListeners.add(listener);
    await this.call('org.freedesktop.DBus', '/org/freedesktop/DBus', 'org.freedesktop.DBus', 'AddMatch', 's', [rule]);
    return async () => {
      this.signalListeners.delete(listener);
      await this.call('org.freedesktop.DBus', '/org/freedesktop/DBus', 'org.freedesktop.DBus', 'RemoveMatch', 's', [rule]).catch(() => {});
    };
  }

  /** Unwrap a Variant (dbus-next returns them for 'v' values). */
  unwrap(v: DBusValue): DBusValue {
    return v instanceof this.dbus.Variant ? (v as { value: unknown }).value : v;
  }

  isDBusError(e: unknown): e is { type: string; text: string } {
    return e instanceof this.dbus.DBusError;
  }

  /** Own a well-known name; fails if another connection has it. */
  async requestName(name: string): Promise<void> {
    const DO_NOT_QUEUE = 4;
    const reply = await this.bus.requestName(name, DO_NOT_QUEUE);
    if (reply !== this.dbus.RequestNameReply.PRIMARY_OWNER && reply !== this.dbus.RequestNameReply.ALREADY_OWNER) {
      throw new BerthError('CONFLICT_BUS_NAME', `the bus name ${name} is taken (another berth agent is running?)`, { hint: 'stop the other agent first' });
    }
  }

  /**
   * Serve method calls to `path`: `handler` returns [signature, body] or throws a
   * `BusMethodError`; anything else thrown becomes org.freedesktop.DBus.Error.Failed.
   */
  serve(path: string, handler: (call: MethodCall) => Promise<[string, DBusValue[]]>): void {
    this.bus.addMethodHandler((msg: DBusMessage) => {
      if (msg.path !== path) return false;
      const call: MethodCall = { interface: msg.interface ?? '', member: msg.member, sender: msg.sender, signature: msg.signature ?? '', body: (msg.body ?? []) as DBusValue[] };
      handler(call).then(
        ([signature, body]) => this.bus.send(this.dbus.Message.newMethodReturn(msg, signature, body)),
        (e: unknown) => {
          const name = e instanceof BusMethodError ? e.errorName : 'org.freedesktop.DBus.Error.Failed';
          this.bus.send(this.dbus.Message.newError(msg as unknown as string, name, (e as Error).message));
        },
      );
      return true;
    });
  }

  emitSignal(path: string, iface: string, member: string, signature: string, body: DBusValue[]): void {
    this.bus.send(this.dbus.Message.newSignal(path, iface, member, signature, body));
  }

  /** The Unix UID of the process behind a unique bus name (from the bus daemon, not the caller's word). */
  async callerUid(sender: string): Promise<number> {
    const [uid] = await this.call('org.freedesktop.DBus', '/org/freedesktop/DBus', 'org.freedesktop.DBus', 'GetConnectionUnixUser', 's', [sender]);
    return Number(uid);
  }

  disconnect(): void {
    this.bus.disconnect();
  }
}

export interface MethodCall {
  interface: string;
  member: string;
  sender: string;
  signature: string;
  body: DBusValue[];
}

/** An error a served method returns to its caller by D-Bus error name. */
export class BusMethodError extends Error {
  readonly errorName: string;
  constructor(errorName: string, message: string) {
    super(message);
    this.errorName = errorName;
  }
}
