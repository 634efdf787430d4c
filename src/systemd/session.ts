/** A connection to systemd for the length of one operation. */
import { SystemBus } from './bus.ts';
import { SystemdManager } from './manager.ts';

export async function withSystemd<T>(fn: (systemd: SystemdManager) => Promise<T>): Promise<T> {
  const bus = await SystemBus.connect();
  try {
    return await fn(new SystemdManager(bus));
  } finally {
    bus.disconnect();
  }
}
