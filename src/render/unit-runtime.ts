/**
 * Makes a rendered unit run its container the way berth needs, whatever the
 * template said, keeping the template's Type= where it can work.
 *
 * For a unit whose ExecStart= is $EXEC_START, $EXEC_START was rendered for
 * the unit's Type= (runtime/runtime.ts, RunMode):
 *  - no Type=, simple, exec, idle, forking: berth's EXEC_START is
 *    `runc run --detach --pid-file $PIDFILE ...`, which returns only once
 *    the container process runs (or fails to), so the unit becomes
 *    Type=forking with PIDFile=$PIDFILE: a container that cannot start fails
 *    the start job instead of failing later, unseen by the installer (what
 *    atomic's Type=simple units did);
 *  - notify (and notify-reload): the runtime runs in the foreground and the
 *    container's own READY=1 reaches systemd (runtime.ts says how), so the
 *    unit is active only once the daemon says it is ready; NotifyAccess=all,
 *    since the notifying process is the container's, not the main one (the
 *    runtime);
 *  - oneshot and dbus: the runtime in the foreground; systemd's own rules
 *    (exit 0, the bus name) say when the unit is started.
 * Any other Type= is refused. In every case:
 *  - Delegate=yes: config.json puts the container's cgroup below the
 *    service's, which systemd only leaves alone when delegated;
 *  - ExecStartPre=-$EXEC_STARTPRE and ExecStopPost=-$EXEC_STOPPOST
 *    (`runc delete --force NAME`), unless present: a leftover container
 *    from a crash would make the next `runc run` fail;
 *  - no `ExecStop=$EXEC_STOP`: `runc kill NAME TERM` adds nothing to
 *    systemd's own stop (SIGTERM to every process of the cgroup, the
 *    container's included, then SIGKILL after TimeoutStopSec) and fails
 *    when the container has already exited. A container's init must handle
 *    SIGTERM either way: as PID 1 of its namespace it ignores signals it has
 *    no handler for.
 * A unit that runs the runtime itself (not $EXEC_START) is left as written,
 * except that a bundle given relatively (no --bundle) needs
 * WorkingDirectory=$DESTDIR.
 *
 * A readiness probe (readiness.ts) becomes the first ExecStartPost=.
 */
import path from 'node:path';
import { BerthError } from '../errors.ts';
import { SYSTEMD_BACKEND, SYSTEMD_NOTIFY_SOCKET, type RunMode } from '../runtime/runtime.ts';
import type { NativeTranslation } from './native-keys.ts';
import { describeReadiness, readyCheckArgs, type Readiness } from '../runtime/readiness.ts';
import { execLine, UnitFile } from './unit-file.ts';

const MODE_OF_TYPE: Readonly<Record<string, RunMode>> = {
  simple: 'detach',
  exec: 'detach',
  idle: 'detach',
  forking: 'detach',
  notify: 'notify',
  'notify-reload': 'notify',
  oneshot: 'foreground',
  dbus: 'foreground',
};

/** systemd's default TimeoutStartSec= (DefaultTimeoutStartSec). */
const DEFAULT_START_TIMEOUT_SEC = 90;

/** Split systemd's command prefixes (@-:+!) from an Exec*= value. */
export function splitExecPrefix(value: string): { prefix: string; command: string } {
  const m = /^([@\-:+!]*)(.*)$/s.exec(value)!;
  return { prefix: m[1]!, command: m[2]!.trim() };
}

/** Enough of systemd's command-line splitting to recognise a runtime invocation. */
function words(command: string): string[] {
  return [...command.matchAll(/"((?:[^"\\]|\\.)*)"|'([^']*)'|(\S+)/g)].map((m) => m[1] ?? m[2] ?? m[3]!);
}

function boolValue(v: string): boolean | undefined {
  if (/^(1|yes|y|true|t|on)$/i.test(v)) return true;
  if (/^(0|no|n|false|f|off)$/i.test(v)) return false;
  return undefined;
}

/** A time span in seconds, for the forms templates use ("90", "90s", "2min", "0", "infinity"); undefined otherwise. */
function seconds(span: string): number | undefined {
  if (span === 'infinity' || span === '0') return Infinity;
  const m = /^(\d+)\s*(s|sec|min|m)?$/.exec(span);
  if (!m) return undefined;
  return Number(m[1]) * (m[2] === 'min' || m[2] === 'm' ? 60 : 1);
}

function fail(what: string, why: string, hint: string): BerthError {
  return new BerthError('USAGE', `${what}: ${why}`, { hint });
}

/**
 * How $EXEC_START must run the container for a service template, read from
 * its Type= before rendering (EXEC_START is one of the values the template
 * is rendered with). A Type= that is not written literally counts as the
 * default; adaptToRuntime() refuses it if the rendered unit says otherwise.
 */
export function runModeOf(template: string | undefined): RunMode {
  if (template === undefined) return 'detach';
  let unit: UnitFile;
  try {
    unit = UnitFile.parse(template);
  } catch {
    return 'detach'; // rendering reports the syntax error
  }
  return MODE_OF_TYPE[unit.get('Service', 'Type') ?? 'simple'] ?? 'detach';
}

export interface RuntimeAdaptation {
  /** The mode $EXEC_START was rendered for (runModeOf the template). */
  mode: RunMode;
  readiness?: Readiness | undefined;
  /** How the unit runs berth (self.ts), for the readiness probe. */
  berth: readonly string[];
  /** The systemd backend: config.json as unit settings (native-keys.ts); the unit runs the image's command itself. */
  native?: NativeTranslation | undefined;
}

/**
 * Type= for the systemd backend: the image's process is the main process.
 * No Type= / simple / idle / forking become exec (the start fails when the
 * command cannot be executed, as runc's detach made it fail); an image's
 * process does not fork, it was written for a runtime that waits for it.
 */
const NATIVE_TYPE: Readonly<Record<string, string>> = {
  simple: 'exec',
  exec: 'exec',
  idle: 'exec',
  forking: 'exec',
  notify: 'notify',
  'notify-reload': 'notify-reload',
  oneshot: 'oneshot',
  dbus: 'dbus',
};

/** Exec*= lines a template may add around the container: with the systemd backend they still run on the host. */
const HOST_EXEC_KEYS = ['ExecCondition', 'ExecStartPre', 'ExecStartPost', 'ExecReload', 'ExecStop', 'ExecStopPost'] as const;

/**
 * How the systemd backend runs a command on the host: "+" (no User=,
 * capability or sandboxing settings) and, since systemd 252 still puts every
 * command of the unit into its mount namespace (TemporaryFileSystem=/run,
 * BindPaths= ... over the host's paths, RootDirectoryStartOnly=yes or not),
 * nsenter(1) into PID 1's mount namespace: the host's /run, /tmp and /etc.
 */
export const HOST_COMMAND_PREFIX = '+nsenter --mount=/proc/1/ns/mnt -- ';

export function adaptToRuntime(unit: UnitFile, values: Readonly<Record<string, string>>, what: string, adaptation: RuntimeAdaptation): string[] {
  if (adaptation.native !== undefined) return adaptNative(unit, values, what, adaptation.native, adaptation);
  const warnings: string[] = [];
  const starts = unit.getAll('Service', 'ExecStart');
  if (starts.length === 0) throw fail(what, 'no ExecStart= in [Service]', 'the unit must run the container: ExecStart=$EXEC_START');
  const type = unit.get('Service', 'Type') ?? 'simple';
  if (starts.length > 1 && type !== 'oneshot') throw fail(what, `${starts.length} ExecStart= lines; only Type=oneshot allows more than one`, 'keep one ExecStart=');
  const command = splitExecPrefix(starts[0]!).command;
  const isCommand = (key: string) => (v: string) => splitExecPrefix(v).command === values[key];

  if (starts.some(isCommand('EXEC_START'))) {
    if (starts.length !== 1) throw fail(what, 'ExecStart=$EXEC_START must be the only ExecStart=', 'keep one ExecStart=');
    const mode = MODE_OF_TYPE[type];
    if (mode === undefined) {
      throw fail(what, `Type=${type} cannot run $EXEC_START`, 'use Type=notify for a daemon that notifies systemd, Type=oneshot for a task, or no Type= (berth runs the container detached)');
    }
    if (mode !== adaptation.mode) {
      throw fail(what, `Type=${type} is not written in the template as it renders`, 'write Type= literally in service.template (berth chooses how $EXEC_START runs from it)');
    }
    if (mode === 'detach') adaptDetached(unit, values, what, warnings);
    else if (mode === 'notify') adaptNotify(unit, what, warnings);
    const delegate = unit.get('Service', 'Delegate');
    if (delegate === undefined) unit.set('Service', 'Delegate', 'yes');
    else if (boolValue(delegate) === false) throw fail(what, 'Delegate=no, but the container\'s cgroup lives below the service\'s', 'remove Delegate= (berth sets Delegate=yes)');
    if (unit.get('Service', 'KillMode') === 'none') throw fail(what, 'KillMode=none would leave the container running when the service stops', 'remove KillMode=');
    if (!unit.getAll('Service', 'ExecStartPre').some(isCommand('EXEC_STARTPRE'))) unit.insertFirst('Service', 'ExecStartPre', `-${values['EXEC_STARTPRE']}`);
    if (!unit.getAll('Service', 'ExecStopPost').some(isCommand('EXEC_STOPPOST'))) unit.add('Service', 'ExecStopPost', `-${values['EXEC_STOPPOST']}`);
    unit.dropEntries('Service', 'ExecStop', isCommand('EXEC_STOP'), 'ExecStop=$EXEC_STOP dropped by berth: systemd stops the container (SIGTERM to the cgroup, then SIGKILL)');
  } else {
    warnings.push(...checkOwnRuntimeCommand(unit, values, what, command, type));
  }
  if (adaptation.readiness !== undefined) warnings.push(...addReadinessProbe(unit, values, what, adaptation.readiness, adaptation.berth, type));
  return warnings;
}

/**
 * The systemd backend: ExecStart=$EXEC_START is the image's command, run by
 * systemd inside RootDirectory= with the translated settings; the
 * template's other Exec*= lines keep running on the host ("+" prefix),
 * as they did beside the runtime; $EXEC_STOP/$EXEC_STARTPRE/$EXEC_STOPPOST
 * have nothing to do and are dropped; WorkingDirectory=$DESTDIR (the
 * bundle) gives way to process.cwd. A Type=notify daemon gets systemd's
 * socket at its usual path (systemd 252 does not bind it into a
 * RootDirectory= by itself).
 */
function adaptNative(unit: UnitFile, values: Readonly<Record<string, string>>, what: string, native: NativeTranslation, adaptation: RuntimeAdaptation): string[] {
  const warnings: string[] = [];
  const hint = 'use --runtime runc (or crun) for this image';
  const starts = unit.getAll('Service', 'ExecStart');
  if (starts.length === 0) throw fail(what, 'no ExecStart= in [Service]', 'the unit must run the container: ExecStart=$EXEC_START');
  if (starts.length !== 1 || splitExecPrefix(starts[0]!).command !== values['EXEC_START']) {
    throw fail(what, 'ExecStart= is not $EXEC_START alone: with --runtime systemd, systemd runs the image\'s command itself and a unit that runs a runtime of its own cannot work', hint);
  }
  const type = unit.get('Service', 'Type') ?? 'simple';
  const nativeType = NATIVE_TYPE[type];
  if (nativeType === undefined) throw fail(what, `Type=${type} cannot run $EXEC_START`, 'use Type=notify for a daemon that notifies systemd, Type=oneshot for a task, or no Type=');
  if (type === 'forking') warnings.push(`${what}: Type=forking replaced by Type=exec: with --runtime systemd the image's process is the main process`);
  unit.set('Service', 'Type', nativeType);
  if (unit.get('Service', 'KillMode') === 'none') throw fail(what, 'KillMode=none would leave the container running when the service stops', 'remove KillMode=');
  unit.dropEntries('Service', 'PIDFile', () => true, 'PIDFile= dropped by berth: with --runtime systemd the image\'s process is the main process');
  const noop = (key: string) => (v: string) => splitExecPrefix(v).command === values[key];
  unit.dropEntries('Service', 'ExecStop', noop('EXEC_STOP'), 'ExecStop=$EXEC_STOP dropped by berth: systemd stops the service itself');
  unit.dropEntries('Service', 'ExecStartPre', noop('EXEC_STARTPRE'), 'ExecStartPre=$EXEC_STARTPRE dropped by berth: no runtime state to clean up with --runtime systemd');
  unit.dropEntries('Service', 'ExecStopPost', noop('EXEC_STOPPOST'), 'ExecStopPost=$EXEC_STOPPOST dropped by berth: no runtime state to clean up with --runtime systemd');
  for (const key of HOST_EXEC_KEYS) hostExecLines(unit, key, what);
  unit.dropEntries('Service', 'WorkingDirectory', () => true, 'WorkingDirectory= dropped by berth: with --runtime systemd it is config.json\'s process.cwd inside RootDirectory=');
  if (nativeType === 'notify' || nativeType === 'notify-reload') {
    const access = unit.get('Service', 'NotifyAccess');
    if (access !== 'all') unit.set('Service', 'NotifyAccess', 'all');
  }
  unit.add('Service', 'X-BerthRuntime', SYSTEMD_BACKEND);
  // RootDirectory= for ExecStart= only: the other commands ("+", above) run on the host's root.
  unit.set('Service', 'RootDirectoryStartOnly', 'yes');
  for (const [key, value] of native.entries) {
    // "-": the host commands' chdir into RootDirectory=+cwd happens inside the unit's mount
    // namespace, where a TemporaryFileSystem= may hide it; systemd then falls back to /.
    unit.add('Service', key, key === 'WorkingDirectory' ? `-${value}` : value);
  }
  if (nativeType === 'notify' || nativeType === 'notify-reload') {
    // After the translated mounts: a tmpfs /run would hide it otherwise (systemd mounts by path depth).
    unit.add('Service', 'BindPaths', `${SYSTEMD_NOTIFY_SOCKET}:${SYSTEMD_NOTIFY_SOCKET}:norbind`);
  }
  if (adaptation.readiness !== undefined) warnings.push(...addReadinessProbe(unit, values, what, adaptation.readiness, adaptation.berth, nativeType, HOST_COMMAND_PREFIX));
  return warnings;
}

/** The template's own Exec lines of `key` run on the host, outside RootDirectory= and the unit's mounts (HOST_COMMAND_PREFIX). */
function hostExecLines(unit: UnitFile, key: string, what: string): void {
  const section = unit.section('Service');
  if (!section) return;
  for (const line of section.lines) {
    if (line.kind !== 'entry' || line.key !== key || line.value === '') continue;
    const { prefix, command } = splitExecPrefix(line.value);
    if (prefix.includes('@')) throw fail(what, `${key}=${line.value}: "@" (argv[0]) cannot be kept for a command berth runs on the host with --runtime systemd`, 'drop the "@" prefix, or use --runtime runc');
    line.value = `${prefix.replace(/[+!]/g, '')}${HOST_COMMAND_PREFIX}${command}`;
  }
}

function adaptDetached(unit: UnitFile, values: Readonly<Record<string, string>>, what: string, warnings: string[]): void {
  const type = unit.get('Service', 'Type');
  if (type !== 'forking') {
    if (type !== undefined) warnings.push(`${what}: Type=${type} replaced by Type=forking, so that a container that cannot start fails the start job`);
    unit.set('Service', 'Type', 'forking');
  }
  const pidFile = unit.get('Service', 'PIDFile');
  if (pidFile === undefined) unit.set('Service', 'PIDFile', values['PIDFILE']!);
  else if (pidFile !== values['PIDFILE']) {
    throw fail(what, `PIDFile=${pidFile} is not where the runtime writes the container's PID (${values['PIDFILE']})`, 'write PIDFile=$PIDFILE, or set PIDFILE with --set');
  }
}

function adaptNotify(unit: UnitFile, what: string, warnings: string[]): void {
  const access = unit.get('Service', 'NotifyAccess');
  if (access !== 'all') {
    if (access !== undefined) warnings.push(`${what}: NotifyAccess=${access} replaced by NotifyAccess=all: READY=1 comes from the container, not from the runtime, which is the main process`);
    unit.set('Service', 'NotifyAccess', 'all');
  }
  // The runtime does not write the PID file in the foreground: systemd would wait for it.
  unit.dropEntries('Service', 'PIDFile', () => true, 'PIDFile= dropped by berth: with Type=notify the runtime is the main process and writes no PID file');
}

function checkOwnRuntimeCommand(unit: UnitFile, values: Readonly<Record<string, string>>, what: string, command: string, type: string): string[] {
  const warnings: string[] = [];
  const argv = words(command);
  const runtime = values['RUNTIME'];
  const argv0 = argv[0] ?? '';
  if (argv0 === runtime || ['runc', 'crun'].includes(path.basename(argv0))) {
    const bundle = argv.some((a) => a === '--bundle' || a === '-b' || a.startsWith('--bundle='));
    if (!bundle) {
      const wd = unit.get('Service', 'WorkingDirectory');
      if (wd === undefined) unit.set('Service', 'WorkingDirectory', values['DESTDIR']!);
      else if (wd.replace(/^-/, '') !== values['DESTDIR']) {
        throw fail(what, `ExecStart= runs the runtime without --bundle, so the bundle is the working directory, but WorkingDirectory=${wd} is not $DESTDIR`, 'write WorkingDirectory=$DESTDIR');
      }
    }
    const detached = argv.some((a) => a === '--detach' || a === '-d');
    if (argv.includes('run') && !detached && (type === 'simple' || type === 'exec')) {
      warnings.push(`${what}: ExecStart= runs the runtime in the foreground with Type=${type}: a container that cannot start fails after the install reports success; use ExecStart=$EXEC_START`);
    }
    if (argv.includes('run') && !detached && type === 'notify') {
      warnings.push(`${what}: ExecStart= runs the runtime itself with Type=notify: runc 1.1 relays READY=1 but keeps waiting when the container exits first, so such a start fails only at TimeoutStartSec; use ExecStart=$EXEC_START`);
    }
  }
  return warnings;
}

function addReadinessProbe(unit: UnitFile, values: Readonly<Record<string, string>>, what: string, readiness: Readiness, berth: readonly string[], type: string, prefix = ''): string[] {
  if (type === 'oneshot') {
    throw fail(what, 'a readiness probe on a Type=oneshot unit', 'a oneshot unit is started when its container has exited: there is nothing left to probe; drop the probe');
  }
  const warnings: string[] = [];
  // The systemd backend has no OCI runtime: its cmd probe enters the service's namespaces (runtime/probe.ts).
  const runtime = prefix === '' ? values['RUNTIME']! : SYSTEMD_BACKEND;
  unit.insertFirst('Service', 'ExecStartPost', `${prefix}${execLine([...berth, ...readyCheckArgs(readiness, runtime, values['NAME']!)])}`);
  // The probe runs within the start job: its time must fit TimeoutStartSec=.
  const given = unit.get('Service', 'TimeoutStartSec') ?? unit.get('Service', 'TimeoutSec');
  const needed = readiness.timeoutSec + 30;
  if (given === undefined) {
    if (needed > DEFAULT_START_TIMEOUT_SEC) unit.set('Service', 'TimeoutStartSec', `${needed}s`);
  } else {
    const limit = seconds(given);
    if (limit !== undefined && limit < readiness.timeoutSec) {
      warnings.push(`${what}: TimeoutStartSec=${given} is shorter than the readiness probe's ${describeReadiness(readiness)}: systemd fails the start first`);
    }
  }
  return warnings;
}
