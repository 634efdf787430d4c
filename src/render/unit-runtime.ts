/**
 * Makes a rendered unit run its container the way berth needs, whatever the
 * template said.
 *
 * atomic-style templates say `ExecStart=$EXEC_START` with no Type=, i.e.
 * Type=simple, where atomic ran `runc run` in the foreground: the start job
 * succeeded as soon as runc was forked, so a container that could not start
 * failed later, unseen by the installer. berth's EXEC_START is
 * `runc run --detach --pid-file $PIDFILE --bundle $DESTDIR NAME`, which
 * returns only once the container process runs (or fails to), so for a unit
 * whose ExecStart= is $EXEC_START berth makes it:
 *  - Type=forking (from no Type=, simple or exec; any other type is refused),
 *    with PIDFile=$PIDFILE, which runc writes and systemd reads to track
 *    the container's init as the main process;
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
 */
import path from 'node:path';
import { BerthError } from '../errors.ts';
import type { UnitFile } from './unit-file.ts';

const DETACHABLE_TYPES = ['simple', 'exec', 'forking'];

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

function fail(what: string, why: string, hint: string): BerthError {
  return new BerthError('USAGE', `${what}: ${why}`, { hint });
}

export function adaptToRuntime(unit: UnitFile, values: Readonly<Record<string, string>>, what: string): string[] {
  const warnings: string[] = [];
  const starts = unit.getAll('Service', 'ExecStart');
  if (starts.length === 0) throw fail(what, 'no ExecStart= in [Service]', 'the unit must run the container: ExecStart=$EXEC_START');
  const type = unit.get('Service', 'Type') ?? 'simple';
  if (starts.length > 1 && type !== 'oneshot') throw fail(what, `${starts.length} ExecStart= lines; only Type=oneshot allows more than one`, 'keep one ExecStart=');
  const command = splitExecPrefix(starts[0]!).command;
  const isCommand = (key: string) => (v: string) => splitExecPrefix(v).command === values[key];

  if (starts.some(isCommand('EXEC_START'))) {
    if (starts.length !== 1) throw fail(what, 'ExecStart=$EXEC_START must be the only ExecStart=', 'keep one ExecStart=');
    if (!DETACHABLE_TYPES.includes(type)) {
      throw fail(what, `Type=${type} cannot run $EXEC_START`, 'berth runs the container detached (Type=forking); remove Type= or set Type=forking');
    }
    if (unit.get('Service', 'Type') !== 'forking') {
      if (unit.get('Service', 'Type') !== undefined) warnings.push(`${what}: Type=${type} replaced by Type=forking, so that a container that cannot start fails the start job`);
      unit.set('Service', 'Type', 'forking');
    }
    const pidFile = unit.get('Service', 'PIDFile');
    if (pidFile === undefined) unit.set('Service', 'PIDFile', values['PIDFILE']!);
    else if (pidFile !== values['PIDFILE']) {
      throw fail(what, `PIDFile=${pidFile} is not where the runtime writes the container's PID (${values['PIDFILE']})`, 'write PIDFile=$PIDFILE, or set PIDFILE with --set');
    }
    const delegate = unit.get('Service', 'Delegate');
    if (delegate === undefined) unit.set('Service', 'Delegate', 'yes');
    else if (boolValue(delegate) === false) throw fail(what, 'Delegate=no, but the container\'s cgroup lives below the service\'s', 'remove Delegate= (berth sets Delegate=yes)');
    if (unit.get('Service', 'KillMode') === 'none') throw fail(what, 'KillMode=none would leave the container running when the service stops', 'remove KillMode=');
    if (!unit.getAll('Service', 'ExecStartPre').some(isCommand('EXEC_STARTPRE'))) unit.insertFirst('Service', 'ExecStartPre', `-${values['EXEC_STARTPRE']}`);
    if (!unit.getAll('Service', 'ExecStopPost').some(isCommand('EXEC_STOPPOST'))) unit.add('Service', 'ExecStopPost', `-${values['EXEC_STOPPOST']}`);
    unit.dropEntries('Service', 'ExecStop', isCommand('EXEC_STOP'), 'ExecStop=$EXEC_STOP dropped by berth: systemd stops the container (SIGTERM to the cgroup, then SIGKILL)');
    return warnings;
  }

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
  }
  return warnings;
}
