/**
 * systemd's manager over D-Bus (org.freedesktop.systemd1(5)): unit files,
 * reload, jobs tracked to completion, unit properties.
 */
import { BerthError } from '../errors.ts';
import type { SystemBus } from './bus.ts';

const DEST = 'org.freedesktop.systemd1';
const PATH = '/org/freedesktop/systemd1';
const MANAGER = 'org.freedesktop.systemd1.Manager';
const UNIT = 'org.freedesktop.systemd1.Unit';
const SERVICE = 'org.freedesktop.systemd1.Service';
const PROPERTIES = 'org.freedesktop.DBus.Properties';

/** JobRemoved's result: done, canceled, timeout, failed, dependency, skipped. */
export type JobResult = 'done' | 'canceled' | 'timeout' | 'failed' | 'dependency' | 'skipped' | string;

export interface UnitState {
  name: string;
  loadState: string;
  activeState: string;
  subState: string;
  unitFileState: string;
  /** Microseconds since the epoch when it last became active, 0 if never. */
  activeEnterTimestamp: number;
  fragmentPath: string;
  /** Service units: automatic restarts (Restart=) since the last explicit start; 0 for other units. */
  nRestarts: number;
  /** false when the last start was skipped because a Condition*= of the unit was not met. */
  conditionResult: boolean;
}

export class SystemdManager {
  private readonly bus: SystemBus;

  constructor(bus: SystemBus) {
    this.bus = bus;
  }

  private call(member: string, signature = '', body: unknown[] = []): Promise<unknown[]> {
    return this.bus.call(DEST, PATH, MANAGER, member, signature, body).catch((e: unknown) => {
      throw this.error(member, body[0], e);
    });
  }

  async reload(): Promise<void> {
    await this.call('Reload');
  }

  /** Enable (create the [Install] symlinks of) unit files; `force` replaces conflicting links. */
  async enableUnitFiles(files: string[], force = true): Promise<void> {
    await this.call('EnableUnitFiles', 'asbb', [files, false, force]);
  }

  /** Disable and enable again: [Install] links match the (possibly changed) unit file. */
  async reenableUnitFiles(files: string[]): Promise<void> {
    await this.call('ReenableUnitFiles', 'asbb', [files, false, true]);
  }

  async disableUnitFiles(files: string[]): Promise<void> {
    await this.call('DisableUnitFiles', 'asb', [files, false]);
  }

  async resetFailed(unit: string): Promise<void> {
    await this.call('ResetFailedUnit', 's', [unit]).catch((e: unknown) => {
      // Not loaded or not failed: nothing to reset.
      if (!(e instanceof BerthError)) throw e;
    });
  }

  /** Start a unit and wait for its job to finish. */
  startUnit(unit: string, timeoutMs: number): Promise<JobResult> {
    return this.runJob('StartUnit', unit, timeoutMs);
  }

  stopUnit(unit: string, timeoutMs: number): Promise<JobResult> {
    return this.runJob('StopUnit', unit, timeoutMs);
  }

  /** Restart (start if stopped); units that Require= it are restarted with it, as systemd does. */
  restartUnit(unit: string, timeoutMs: number): Promise<JobResult> {
    return this.runJob('RestartUnit', unit, timeoutMs);
  }

  /**
   * Queue a job and wait for its JobRemoved. Subscribe and the signal match
   * come first, and signals are buffered: JobRemoved can arrive before the
   * method reply that names the job.
   */
  private async runJob(method: 'StartUnit' | 'StopUnit' | 'RestartUnit', unit: string, timeoutMs: number): Promise<JobResult> {
    const seen = new Map<string, JobResult>();
    let waiting: { path: string; resolve: (r: JobResult) => void } | undefined;
    const unsubscribe = await this.bus.onSignal(`type='signal',sender='${DEST}',path='${PATH}',interface='${MANAGER}',member='JobRemoved'`, (msg) => {
      if (msg.member !== 'JobRemoved') return;
      const [, jobPath, , result] = msg.body as [number, string, string, string];
      if (waiting && waiting.path === jobPath) waiting.resolve(result);
      else seen.set(jobPath, result);
    });
    try {
      await this.call('Subscribe');
      const [jobPath] = (await this.call(method, 'ss', [unit, 'replace'])) as [string];
      const early = seen.get(jobPath);
      if (early !== undefined) return early;
      return await new Promise<JobResult>((resolve, reject) => {
        const timer = setTimeout(() => {
          reject(new BerthError(method === 'StopUnit' ? 'STOP_FAILED' : 'START_FAILED', `${unit}: ${method.replace('Unit', '').toLowerCase()} job did not finish within ${Math.round(timeoutMs / 1000)}s`, {
            hint: `see journalctl -u ${unit}`,
          }));
        }, timeoutMs);
        waiting = { path: jobPath, resolve: (r) => { clearTimeout(timer); resolve(r); } };
      });
    } finally {
      await unsubscribe();
      await this.call('Unsubscribe').catch(() => {});
    }
  }

  /** The unit's state; LoadState "not-found" when systemd knows no such unit. */
  async unitState(unit: string): Promise<UnitState> {
    const [path] = (await this.call('LoadUnit', 's', [unit])) as [string];
    const [props] = (await this.bus.call(DEST, path, PROPERTIES, 'GetAll', 's', [UNIT]).catch((e: unknown) => {
      throw this.error('GetAll', unit, e);
    })) as [Record<string, unknown>];
    const get = (k: string): unknown => this.bus.unwrap(props[k]);
    // NRestarts is on the Service interface; an older systemd without it counts as 0.
    const nRestarts = unit.endsWith('.service')
      ? await this.bus.call(DEST, path, PROPERTIES, 'Get', 'ss', [SERVICE, 'NRestarts']).then(([v]) => Number(this.bus.unwrap(v) ?? 0), () => 0)
      : 0;
    return {
      name: unit,
      loadState: String(get('LoadState') ?? ''),
      activeState: String(get('ActiveState') ?? ''),
      subState: String(get('SubState') ?? ''),
      unitFileState: String(get('UnitFileState') ?? ''),
      activeEnterTimestamp: Number(get('ActiveEnterTimestamp') ?? 0),
      fragmentPath: String(get('FragmentPath') ?? ''),
      nRestarts,
      conditionResult: get('ConditionResult') !== false,
    };
  }

  private error(member: string, subject: unknown, e: unknown): BerthError {
    if (e instanceof BerthError) return e;
    const text = this.bus.isDBusError(e) ? `${e.type}: ${e.text}` : (e as Error)?.message ?? String(e);
    return new BerthError('SYSTEMD_ERROR', `systemd ${member}${typeof subject === 'string' ? ` ${subject}` : ''} failed: ${text}`, {
      hint: 'check systemd\'s journal (journalctl -b)',
      cause: e,
    });
  }
}
