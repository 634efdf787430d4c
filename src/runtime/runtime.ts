/**
 * The OCI runtime (runc, or crun where it works) as command lines for the
 * unit. berth never runs containers itself: systemd does, through these.
 */
import { constants } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { BerthError } from '../errors.ts';

const SEARCH_PATH = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

/**
 * The systemd backend: no OCI runtime at all; systemd runs the image's
 * process itself with RootDirectory= (render/native-keys.ts). Its "resolved
 * path" is this name.
 */
export const SYSTEMD_BACKEND = 'systemd';

export function isSystemdBackend(runtime: string): boolean {
  return runtime === SYSTEMD_BACKEND;
}

/** What RUNTIME holds for the systemd backend: templates that run $RUNTIME themselves fail plainly. */
export const NO_OCI_RUNTIME = '/bin/false';

/** The runtimes an image may ask for with its label berth.runtime (never a path: the host picks programs). */
export const RUNTIME_LABEL = 'berth.runtime';
export const LABEL_RUNTIMES: readonly string[] = ['runc', 'crun', SYSTEMD_BACKEND];

export interface RuntimeChoice {
  name: string;
  from: 'option' | 'label' | 'default';
}

/**
 * The runtime of a new deployment: the option (--runtime, a plan's
 * runtime:) wins, then the image's berth.runtime label (runc, crun or
 * systemd only: an image does not name programs on the host), then runc.
 */
export function chooseRuntime(option: string | undefined, labels: Readonly<Record<string, string>> | undefined): RuntimeChoice {
  if (option !== undefined) return { name: option, from: 'option' };
  const label = labels !== undefined && Object.hasOwn(labels, RUNTIME_LABEL) ? labels[RUNTIME_LABEL] : undefined;
  if (label === undefined) return { name: 'runc', from: 'default' };
  if (!LABEL_RUNTIMES.includes(label)) {
    throw new BerthError('USAGE', `the image's label ${RUNTIME_LABEL}=${JSON.stringify(label.slice(0, 80))} names no runtime berth knows`, { hint: `a label may ask for ${LABEL_RUNTIMES.join(', ')}; give --runtime to choose yourself` });
  }
  return { name: label, from: 'label' };
}

/** Resolve `runc`, `crun` or an absolute path to an executable; `systemd` is the systemd backend. */
export async function findRuntime(name = 'runc'): Promise<string> {
  if (isSystemdBackend(name)) return SYSTEMD_BACKEND;
  const candidates = name.includes('/') ? [path.resolve(name)] : SEARCH_PATH.map((d) => path.join(d, name));
  for (const candidate of candidates) {
    try {
      await fs.access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here (or not executable): try the next one
    }
  }
  throw new BerthError('NO_RUNTIME', `OCI runtime "${name}" not found${name.includes('/') ? '' : ` in ${SEARCH_PATH.join(':')}`}`, {
    hint: 'install runc (apt-get install runc) or pass --runtime PATH',
  });
}

/**
 * How the unit runs the container, chosen from the unit's Type=:
 *  - detach: `run --detach --pid-file`, for Type=forking (and simple/exec/idle,
 *    which berth turns into forking): the start job fails when the container
 *    cannot start, and systemd tracks the container's init by its PID file;
 *  - notify: `run` in the foreground for Type=notify. The container's own
 *    sd_notify(READY=1) goes straight to systemd through the manager's
 *    socket, bind-mounted into the container (NOTIFY_SOCKET_IN_CONTAINER);
 *    the runtime is started without NOTIFY_SOCKET so that it does not put its
 *    own relay in between. runc 1.1's relay keeps waiting for READY after the
 *    container has died (the start then fails only at TimeoutStartSec);
 *    without it the runtime exits with the container and the start fails at
 *    once, the same with runc and crun. NotifyAccess=all lets systemd take
 *    READY=1 from a process of the unit's cgroup other than the main one;
 *  - foreground: `run` in the foreground, for Type=oneshot (done when the
 *    container exits 0) and Type=dbus (ready when it takes its bus name).
 */
export type RunMode = 'detach' | 'notify' | 'foreground';

/**
 * How $EXEC_START and friends read for the systemd backend: the image's own
 * command (set once config.json is rendered), and nothing to clean up
 * before or after (systemd keeps no container state), so EXEC_STOP,
 * EXEC_STARTPRE and EXEC_STOPPOST are a no-op that the unit adaptation drops.
 */
export const NATIVE_NOOP = '/bin/true';

/** systemd's notification socket (the system manager's, always here), and where a container sees it. */
export const SYSTEMD_NOTIFY_SOCKET = '/run/systemd/notify';
/** systemd-nspawn's place for it: /run/host is the container interface's directory of host things. */
export const NOTIFY_SOCKET_IN_CONTAINER = '/run/host/notify';

/** env(1), used to start the runtime without NOTIFY_SOCKET. */
export const ENV_COMMAND = '/usr/bin/env';

export interface RuntimeCommands {
  /** Create and start the container (detached, writing the container's PID where systemd reads it, or in the foreground). */
  run: string[];
  /** Stop it (kept for templates that name $EXEC_STOP; systemd's own stop does the same). */
  kill: string[];
  /** Remove leftover state of a previous run (killed runtime, crash). */
  delete: string[];
  /** Run a command inside the running container. */
  exec(args: readonly string[]): string[];
}

export function runtimeCommands(runtime: string, id: string, bundle: string, pidFile: string, mode: RunMode = 'detach'): RuntimeCommands {
  const run =
    mode === 'detach'
      ? [runtime, 'run', '--detach', '--pid-file', pidFile, '--bundle', bundle, id]
      : [ENV_COMMAND, '-u', 'NOTIFY_SOCKET', runtime, 'run', '--bundle', bundle, id];
  return {
    run,
    kill: [runtime, 'kill', id, 'TERM'],
    delete: [runtime, 'delete', '--force', id],
    exec: (args) => [runtime, 'exec', id, ...args],
  };
}
