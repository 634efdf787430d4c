/**
 * Running a command inside a running container, for readiness and health
 * probes: `RUNTIME exec NAME ...` with an OCI runtime; with the systemd
 * backend, nsenter(1) into the namespaces, root and working directory of
 * the service's main process (systemctl show -p MainPID), as its user and
 * group and with its environment (/proc/PID/environ). The probe keeps the
 * capabilities of its caller (the unit's ExecStartPost=, berth): it reads
 * the service's view, it is not confined like the service.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import { promisify } from 'node:util';
import { isSystemdBackend } from './runtime.ts';

const execFileP = promisify(execFile);

export interface ContainerCommand {
  argv: string[];
  /** The environment to run argv with (undefined: the caller's). */
  env?: Record<string, string>;
}

/** Thrown when the service has no running main process to enter. */
export class NotRunning extends Error {}

export async function containerCommand(runtime: string, id: string, args: readonly string[]): Promise<ContainerCommand> {
  if (!isSystemdBackend(runtime)) return { argv: [runtime, 'exec', id, ...args] };
  const { stdout } = await execFileP('systemctl', ['show', '--property=MainPID', '--value', `${id}.service`], { timeout: 10_000 });
  const pid = Number(stdout.trim());
  if (!Number.isInteger(pid) || pid <= 0) throw new NotRunning(`${id}.service has no main process`);
  let status: string;
  let environ: string;
  try {
    [status, environ] = await Promise.all([fs.readFile(`/proc/${pid}/status`, 'utf8'), fs.readFile(`/proc/${pid}/environ`, 'utf8')]);
  } catch {
    throw new NotRunning(`${id}.service's main process ${pid} is gone`);
  }
  const uid = /^Uid:\s+(\d+)/m.exec(status)?.[1] ?? '0';
  const gid = /^Gid:\s+(\d+)/m.exec(status)?.[1] ?? '0';
  const env: Record<string, string> = {};
  for (const e of environ.split('\0')) {
    const eq = e.indexOf('=');
    if (eq > 0) env[e.slice(0, eq)] = e.slice(eq + 1);
  }
  // --all skips the user namespace when it is the caller's; -r/-w: the service's RootDirectory= and cwd.
  return { argv: ['nsenter', '--target', String(pid), '--all', '--root', '--wd', '--setuid', uid, '--setgid', gid, '--', ...args], env };
}
