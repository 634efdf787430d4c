/**
 * Readiness probes for daemons that do not notify systemd: what to probe
 * (a command inside the container, an HTTP URL, a TCP address), from the
 * command line (--ready-*), a plan (`ready:`) or the image's labels
 * (berth.ready.*), validated here and rendered into the unit as the first
 * ExecStartPost=. systemd reports the start job done, and starts units
 * ordered After= this one, only once every ExecStartPost= has succeeded: so
 * ordering means "ready", after a reboot too, with berth not running.
 *
 * An image's labels are the image author's word, not the administrator's:
 * an address from a label must be on the loopback interface, so that an
 * image cannot make the host probe (connect to) anything else.
 */
import { isIP } from 'node:net';
import { BerthError } from '../errors.ts';

export type ReadyKind = 'cmd' | 'http' | 'tcp';

export interface Readiness {
  kind: ReadyKind;
  /** The command (sh -c, inside the container), the URL, or HOST:PORT. */
  target: string;
  /** How long the probe may take before the start fails, in seconds. */
  timeoutSec: number;
}

export const READY_KINDS: readonly ReadyKind[] = ['cmd', 'http', 'tcp'];
export const DEFAULT_READY_TIMEOUT_SEC = 60;
const MAX_READY_TIMEOUT_SEC = 3600;

/** Image labels that ask for a probe (berth.ready.cmd, .http, .tcp; .timeout in seconds). */
export const READY_LABEL_PREFIX = 'berth.ready.';

export interface ReadinessSpec {
  cmd?: string | undefined;
  http?: string | undefined;
  tcp?: string | undefined;
  timeoutSec?: number | undefined;
}

function bad(where: string, why: string, hint: string): BerthError {
  return new BerthError('USAGE', `${where}: ${why}`, { hint });
}

/** HOST:PORT (IPv6 in brackets) → host and port; undefined when malformed. */
export function splitHostPort(address: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(address);
  if (!m) return undefined;
  const host = m[1] ?? m[2]!;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return undefined;
  if (m[1] !== undefined && isIP(host) !== 6) return undefined;
  return { host, port };
}

function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return isIP(host) === 6 && (host === '::1' || /^(0{0,4}:){7}0{0,3}1$/.test(host));
}

/**
 * Check a readiness spec; `where` names its source in errors ("--ready-tcp",
 * "plan entry etcd.ready", "image label berth.ready.tcp"). Undefined when
 * the spec asks for nothing.
 */
export function checkReadiness(spec: ReadinessSpec, where: string, options: { loopbackOnly?: boolean } = {}): Readiness | undefined {
  const given = READY_KINDS.filter((k) => spec[k] !== undefined);
  if (given.length === 0) {
    if (spec.timeoutSec !== undefined) throw bad(where, 'a readiness timeout without a probe', 'add a probe: cmd, http or tcp');
    return undefined;
  }
  if (given.length > 1) throw bad(where, `more than one readiness probe (${given.join(', ')})`, 'give one probe: cmd, http or tcp');
  const kind = given[0]!;
  const target = spec[kind]!;
  const timeoutSec = spec.timeoutSec ?? DEFAULT_READY_TIMEOUT_SEC;
  if (!Number.isInteger(timeoutSec) || timeoutSec < 1 || timeoutSec > MAX_READY_TIMEOUT_SEC) {
    throw bad(where, `readiness timeout ${JSON.stringify(spec.timeoutSec)} is not a whole number of seconds from 1 to ${MAX_READY_TIMEOUT_SEC}`, 'give the timeout in seconds, e.g. 60');
  }
  if (target === '' || /[\x00-\x1f\x7f]/.test(target) || target.length > 4096) {
    throw bad(where, `the ${kind} probe is empty, too long or has a control character`, 'give a single line');
  }
  let host: string | undefined;
  if (kind === 'tcp') {
    const hp = splitHostPort(target);
    if (!hp) throw bad(where, `${JSON.stringify(target)} is not HOST:PORT`, 'e.g. 127.0.0.1:2379 or [::1]:2379');
    host = hp.host;
  } else if (kind === 'http') {
    let url: URL;
    try {
      url = new URL(target);
    } catch {
      throw bad(where, `${JSON.stringify(target)} is not a URL`, 'e.g. http://127.0.0.1:2379/health');
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw bad(where, `${JSON.stringify(target)} is not an http(s) URL`, 'e.g. http://127.0.0.1:2379/health');
    if (url.username !== '' || url.password !== '') throw bad(where, 'the URL carries credentials', 'a readiness URL must not need credentials');
    host = url.hostname.replace(/^\[|\]$/g, '');
  }
  if (options.loopbackOnly && host !== undefined && !isLoopback(host)) {
    throw new BerthError('USAGE', `${where}: ${host} is not a loopback address`, {
      hint: 'an image may only ask for probes of 127.0.0.1, ::1 or localhost; give --ready-tcp/--ready-http to probe another address',
    });
  }
  return { kind, target, timeoutSec };
}

/** The readiness an image asks for in its labels (berth.ready.*), checked. */
export function readinessFromLabels(labels: Readonly<Record<string, string>> | undefined): Readiness | undefined {
  if (labels === undefined) return undefined;
  const label = (k: string): string | undefined => (Object.hasOwn(labels, READY_LABEL_PREFIX + k) ? labels[READY_LABEL_PREFIX + k] : undefined);
  const timeout = label('timeout');
  const timeoutSec = timeout === undefined ? undefined : /^\d{1,5}$/.test(timeout) ? Number(timeout) : Number.NaN;
  return checkReadiness({ cmd: label('cmd'), http: label('http'), tcp: label('tcp'), timeoutSec }, `image label ${READY_LABEL_PREFIX}*`, { loopbackOnly: true });
}

/** The arguments of `berth ready-check` for a probe of container `id` run by `runtime`. */
export function readyCheckArgs(r: Readiness, runtime: string, id: string): string[] {
  const target = r.kind === 'cmd' ? ['--cmd', r.target, '--runtime', runtime, '--container', id] : [`--${r.kind}`, r.target];
  return ['ready-check', ...target, '--timeout', String(r.timeoutSec)];
}

export function describeReadiness(r: Readiness): string {
  return `${r.kind} ${r.target} (within ${r.timeoutSec} s)`;
}
