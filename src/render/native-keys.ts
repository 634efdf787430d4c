/**
 * The systemd backend (`--runtime systemd`): config.json translated into
 * unit settings, so that systemd itself runs the image's process with
 * `RootDirectory=` the read-only checkout — no OCI runtime in the start path.
 *
 * The translation is a data table in the quadlet style: one row per
 * config.json field, each with the unit keys it becomes (systemd 252's keys
 * only) or the reason it cannot be expressed. A field the table does not
 * know, or a value a row cannot express, is refused naming the field
 * (`process.capabilities.effective`, `mounts[3] /dev/fuse`, `hooks`...) with
 * the hint `--runtime runc`; nothing is installed then (the translation runs
 * while the deployment is staged).
 *
 * Differences the backend accepts on purpose are returned as notes (shown by
 * install and kept in info.json for `berth status`):
 *  - the pid namespace: systemd 252 has no PrivatePIDs=; the process sees
 *    the host's PIDs and is not PID 1 (berth's own configs always ask for
 *    one, so refusing it would refuse every image);
 *  - PrivateDevices= (for a tmpfs /dev) removes CAP_MKNOD and CAP_SYS_RAWIO
 *    from the bounding set: the device cgroup of the runc backend already
 *    denies every device node;
 *  - systemd's own variables (INVOCATION_ID, JOURNAL_STREAM, ...) are unset,
 *    HOME defaults to / as with runc for a user the image does not name.
 */
import { BerthError } from '../errors.ts';
import type { RuntimeSpec } from './oci-config.ts';
import { quoteExecArg } from './unit-file.ts';
import { ALL_CAPABILITIES } from './values.ts';

/** One unit setting of [Service], in order. */
export type UnitEntry = readonly [key: string, value: string];

export interface NativeTranslation {
  /** [Service] settings, in the order they are added. */
  entries: UnitEntry[];
  /** The image's command line (the systemd meaning of $EXEC_START). */
  execStart: string[];
  /** Accepted differences from the runc backend, one line each. */
  notes: string[];
}

export interface NativeContext {
  /** The checkout the process runs in: the slot's rootfs, a path without symlinks. */
  rootDirectory: string;
  /**
   * The user and group IDs the host's databases know. systemd 252 looks up
   * User=, Group= and SupplementaryGroups= on the host (before it enters
   * RootDirectory=) and fails the start for a numeric ID it cannot find;
   * undefined: not checked.
   */
  hostIds?: HostIds;
}

export interface HostIds {
  uids: ReadonlySet<number>;
  gids: ReadonlySet<number>;
}

/** Read passwd(5) and group(5) texts into the IDs they name. */
export function parseHostIds(passwd: string, group: string): HostIds {
  const ids = (text: string) => new Set(text.split('\n').map((l) => Number(l.split(':')[2])).filter((n) => Number.isInteger(n)));
  return { uids: ids(passwd), gids: ids(group) };
}

function knownId(out: Out, kind: 'uid' | 'gid', id: number, field: string): void {
  const ids = out.ctx.hostIds;
  if (id === 0 || ids === undefined) return;
  if (!(kind === 'uid' ? ids.uids : ids.gids).has(id)) {
    refuse(field, `${kind === 'uid' ? 'user' : 'group'} ${id} does not exist on this host: systemd 252 looks numeric IDs up on the host and fails the start without them (create it, e.g. ${kind === 'uid' ? 'useradd' : 'groupadd'} --system)`);
  }
}

interface Out {
  add(key: string, value: string): void;
  note(text: string): void;
  readonly spec: RuntimeSpec;
  readonly ctx: NativeContext;
  /** State shared between rows (e.g. PrivateDevices= was set). */
  readonly flags: Set<string>;
}

/** Why a field cannot be translated: the row returns it (or throws `refuse(...)`). */
class Refusal extends Error {
  constructor(
    readonly field: string,
    readonly why: string,
  ) {
    super(`${field}: ${why}`);
  }
}

function refuse(field: string, why: string): never {
  throw new Refusal(field, why);
}

/**
 * A row: the config.json field (dotted path; `*` rows describe list items),
 * the unit keys it becomes (for docs and tests), and how — or `refused`,
 * the reason systemd 252 cannot express it. `ignored` fields change nothing
 * a service can see.
 */
export interface NativeRow {
  field: string;
  keys: readonly string[];
  refused?: string;
  ignored?: string;
  /** When the field is present; a row may refuse particular values. */
  apply?: (value: unknown, out: Out) => void;
  /** Refuse only when the value is not "empty" (a refused field given as {} or [] is harmless). */
  refuseUnlessEmpty?: boolean;
}

const RUNC_HINT = 'use --runtime runc (or crun) for this image';

// --- value helpers ---------------------------------------------------------

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isEmpty = (v: unknown): boolean => v === undefined || v === null || v === false || v === '' || (Array.isArray(v) && v.length === 0) || (isObject(v) && Object.keys(v).length === 0);

function stringList(v: unknown, field: string): string[] {
  if (!Array.isArray(v) || v.some((s) => typeof s !== 'string')) refuse(field, 'not a list of strings');
  return v as string[];
}

function uint(v: unknown, field: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0xffffffff) refuse(field, `${JSON.stringify(v)} is not a non-negative integer`);
  return v;
}

/** A systemd value with specifiers: % doubled. */
const noSpecifiers = (s: string) => s.replace(/%/g, '%%');

function absolutePath(v: unknown, field: string): string {
  if (typeof v !== 'string' || !v.startsWith('/') || /[\s\0"'\\:]/.test(v) || v.split('/').includes('..')) {
    refuse(field, `${JSON.stringify(v)} is not an absolute path systemd can take (no spaces, quotes, colons or ..)`);
  }
  return noSpecifiers(v.length > 1 ? v.replace(/\/+$/, '') : v);
}

const KNOWN_CAPS: ReadonlySet<string> = new Set(ALL_CAPABILITIES);

function capList(v: unknown, field: string): string[] {
  const list = stringList(v, field);
  for (const c of list) if (!KNOWN_CAPS.has(c)) refuse(field, `${c} is not a capability systemd 252 knows`);
  return [...new Set(list)].sort();
}

const sameSet = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((x) => b.includes(x));

// --- rows ----------------------------------------------------------------------

const RLIMITS: Readonly<Record<string, string>> = {
  RLIMIT_CPU: 'LimitCPU', RLIMIT_FSIZE: 'LimitFSIZE', RLIMIT_DATA: 'LimitDATA', RLIMIT_STACK: 'LimitSTACK', RLIMIT_CORE: 'LimitCORE',
  RLIMIT_RSS: 'LimitRSS', RLIMIT_NOFILE: 'LimitNOFILE', RLIMIT_AS: 'LimitAS', RLIMIT_NPROC: 'LimitNPROC', RLIMIT_MEMLOCK: 'LimitMEMLOCK',
  RLIMIT_LOCKS: 'LimitLOCKS', RLIMIT_SIGPENDING: 'LimitSIGPENDING', RLIMIT_MSGQUEUE: 'LimitMSGQUEUE', RLIMIT_NICE: 'LimitNICE',
  RLIMIT_RTPRIO: 'LimitRTPRIO', RLIMIT_RTTIME: 'LimitRTTIME',
};

/** Variables systemd passes to every service that runc does not (UnsetEnvironment= removes them). */
export const MANAGER_VARIABLES = ['LANG', 'INVOCATION_ID', 'JOURNAL_STREAM', 'SYSTEMD_EXEC_PID', 'USER', 'LOGNAME', 'SHELL', 'HOME'] as const;

function envVar(e: string): string {
  const eq = e.indexOf('=');
  return eq < 0 ? e : e.slice(0, eq);
}

function quoteEnv(e: string, field: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*=/.test(e)) refuse(field, `${JSON.stringify(e.slice(0, 60))} is not NAME=VALUE with a name systemd accepts`);
  if (/[\n\r\0]/.test(e)) refuse(field, 'a value with a newline or NUL');
  return `"${noSpecifiers(e).replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/** Mount options berth understands on a bind mount; the rest refuse it. */
const BIND_PROPAGATION = new Set(['private', 'rprivate', 'slave', 'rslave']);

function translateMount(m: unknown, i: number, out: Out): void {
  if (!isObject(m)) refuse(`mounts[${i}]`, 'not an object');
  const dest = absolutePath(m['destination'], `mounts[${i}].destination`);
  const field = `mounts[${i}] ${dest}`;
  const type = typeof m['type'] === 'string' ? m['type'] : undefined;
  const options = m['options'] === undefined ? [] : stringList(m['options'], `${field} options`);
  const isBind = type === 'bind' || options.includes('bind') || options.includes('rbind');
  if (isBind) {
    const source = absolutePath(m['source'], `${field} source`);
    let readonly = false;
    let recursive = false;
    for (const o of options) {
      if (o === 'ro') readonly = true;
      else if (o === 'rw') readonly = false;
      else if (o === 'rbind') recursive = true;
      else if (o === 'bind' || BIND_PROPAGATION.has(o)) continue;
      // atomic's images put mode= on binds: file system data the kernel ignores for a bind mount.
      else if (/^mode=[0-7]{3,4}$/.test(o)) continue;
      else if (o === 'shared' || o === 'rshared') refuse(field, `${o} propagation: the service's mounts cannot propagate back to the host (systemd's namespace is a slave)`);
      else if (o === 'noexec') out.add('NoExecPaths', dest);
      else if (o === 'nosuid') {
        // A set-uid file cannot gain anything under NoNewPrivileges=.
        if (out.spec.process['noNewPrivileges'] !== true) refuse(field, 'nosuid on a bind mount: systemd 252 has no per-mount nosuid (it would be implied by process.noNewPrivileges, which is false)');
      } else if (o === 'nodev') {
        if (!out.flags.has('devices-closed')) refuse(field, 'nodev on a bind mount: systemd 252 has no per-mount nodev (it would be implied by a closed device policy, which the spec does not ask for)');
      } else refuse(field, `bind mount option ${JSON.stringify(o)}`);
    }
    out.add(readonly ? 'BindReadOnlyPaths' : 'BindPaths', `${source}:${dest}:${recursive ? 'rbind' : 'norbind'}`);
    if (!readonly) out.add('ReadWritePaths', dest);
    return;
  }
  switch (type) {
    case 'proc':
      if (dest !== '/proc') refuse(field, 'proc mounted elsewhere than /proc');
      out.add('MountAPIVFS', 'yes');
      return;
    case 'sysfs':
      if (dest !== '/sys') refuse(field, 'sysfs mounted elsewhere than /sys');
      out.add('MountAPIVFS', 'yes');
      if (options.includes('ro')) out.add('ProtectKernelTunables', 'yes');
      return;
    case 'cgroup':
    case 'cgroup2':
      if (dest !== '/sys/fs/cgroup') refuse(field, 'a cgroup file system elsewhere than /sys/fs/cgroup');
      if (options.includes('ro')) out.add('ProtectControlGroups', 'yes');
      return;
    case 'devpts':
    case 'mqueue':
      if (dest !== `/dev/${type === 'devpts' ? 'pts' : 'mqueue'}` || !out.flags.has('private-dev')) refuse(field, `${type} without a private /dev (a tmpfs on /dev)`);
      return; // PrivateDevices= provides it
    case 'tmpfs': {
      if (dest === '/dev') {
        out.add('PrivateDevices', 'yes');
        return;
      }
      // /dev/shm stays a tmpfs of its own (PrivateDevices= alone would bind the host's).
      const opts = options.filter((o) => !BIND_PROPAGATION.has(o));
      for (const o of opts) if (!/^(ro|rw|nosuid|suid|nodev|dev|noexec|exec|strictatime|relatime|noatime|nr_inodes=\d+[kmg]?|size=\d+[kmg%]?|mode=[0-7]{3,4}|uid=\d+|gid=\d+)$/.test(o)) refuse(field, `tmpfs option ${JSON.stringify(o)}`);
      out.add('TemporaryFileSystem', opts.length > 0 ? `${dest}:${opts.join(',')}` : dest);
      return;
    }
    default:
      refuse(field, `a ${type ?? 'typeless'} mount: the systemd backend takes bind mounts, tmpfs, proc, sysfs, cgroup and a private /dev`);
  }
}

function translateNamespaces(v: unknown, out: Out): void {
  if (!Array.isArray(v)) refuse('linux.namespaces', 'not a list');
  for (const [i, ns] of v.entries()) {
    if (!isObject(ns) || typeof ns['type'] !== 'string') refuse(`linux.namespaces[${i}]`, 'not {type, path}');
    const type = ns['type'];
    const nsPath = ns['path'] === undefined ? undefined : absolutePath(ns['path'], `linux.namespaces[${i}] (${type}) path`);
    const field = `linux.namespaces[${i}] (${type})`;
    switch (type) {
      case 'mount':
        if (nsPath !== undefined) refuse(field, 'joining an existing mount namespace');
        break; // RootDirectory= gives the service its own
      case 'ipc':
        out.add(nsPath === undefined ? 'PrivateIPC' : 'IPCNamespacePath', nsPath ?? 'yes');
        break;
      case 'network':
        out.add(nsPath === undefined ? 'PrivateNetwork' : 'NetworkNamespacePath', nsPath ?? 'yes');
        break;
      case 'uts':
        if (nsPath !== undefined) refuse(field, 'joining an existing uts namespace');
        out.add('ProtectHostname', 'yes');
        out.flags.add('uts');
        break;
      case 'pid':
        if (nsPath !== undefined) refuse(field, 'joining an existing pid namespace');
        out.note('pid namespace not applied: systemd 252 has no PrivatePIDs=, the process sees the host\'s PIDs and is not PID 1');
        break;
      case 'user': {
        if (nsPath !== undefined) refuse(field, 'joining an existing user namespace');
        const linux = out.spec.linux ?? {};
        for (const key of ['uidMappings', 'gidMappings'] as const) {
          const maps = linux[key];
          if (maps === undefined) continue;
          if (!Array.isArray(maps) || maps.some((m) => !isObject(m) || m['containerID'] !== m['hostID'])) {
            refuse(`linux.${key}`, 'only identity mappings (containerID = hostID) can be expressed: PrivateUsers= maps root and the service\'s user to themselves');
          }
        }
        out.add('PrivateUsers', 'yes');
        out.note('user namespace: PrivateUsers= maps root and the service\'s user to themselves and every other ID to nobody');
        break;
      }
      default:
        refuse(field, `systemd 252 cannot give a service a private ${type} namespace`);
    }
  }
}

function translateCapabilities(v: unknown, out: Out): void {
  if (!isObject(v)) refuse('process.capabilities', 'not an object of capability sets');
  for (const k of Object.keys(v)) if (!['bounding', 'effective', 'permitted', 'inheritable', 'ambient'].includes(k)) refuse(`process.capabilities.${k}`, 'not a capability set');
  const set = (k: string) => (v[k] === undefined ? [] : capList(v[k], `process.capabilities.${k}`));
  const bounding = set('bounding');
  const ambient = set('ambient');
  const uid = out.spec.process.user?.uid ?? 0;
  // systemd gives root its whole bounding set as effective and permitted, and any other user
  // its ambient set: other combinations cannot be expressed.
  const expected = uid === 0 ? bounding : ambient;
  for (const k of ['effective', 'permitted'] as const) {
    if (!sameSet(set(k), expected)) {
      refuse(`process.capabilities.${k}`, uid === 0 ? 'differs from the bounding set: systemd gives a root process its whole bounding set' : 'differs from the ambient set: systemd gives a non-root process its ambient set');
    }
  }
  const inheritable = set('inheritable');
  if (inheritable.length > 0 && !sameSet(inheritable, ambient)) refuse('process.capabilities.inheritable', 'differs from the ambient set: systemd makes the inheritable set the ambient one');
  if (ambient.some((c) => !bounding.includes(c))) refuse('process.capabilities.ambient', 'has capabilities the bounding set lacks');
  out.add('CapabilityBoundingSet', bounding.length > 0 ? bounding.join(' ') : `~${ALL_CAPABILITIES.join(' ')}`);
  if (ambient.length > 0) out.add('AmbientCapabilities', ambient.join(' '));
}

function translateSeccomp(v: unknown, out: Out): void {
  const field = 'linux.seccomp';
  if (!isObject(v)) refuse(field, 'not an object');
  const why = 'systemd\'s SystemCallFilter= takes a plain allow or deny list of syscall names (no arguments, flags, listener or per-syscall errno)';
  for (const k of Object.keys(v)) if (!['defaultAction', 'defaultErrnoRet', 'architectures', 'syscalls'].includes(k)) refuse(`${field}.${k}`, why);
  const def = v['defaultAction'];
  const rules = Array.isArray(v['syscalls']) ? v['syscalls'] : refuse(`${field}.syscalls`, why);
  const actions = new Set(rules.map((r) => (isObject(r) ? r['action'] : undefined)));
  if (actions.size !== 1) refuse(`${field}.syscalls`, why);
  const action = [...actions][0];
  const names: string[] = [];
  for (const [i, r] of rules.entries()) {
    if (!isObject(r) || Object.keys(r).some((k) => k !== 'names' && k !== 'action')) refuse(`${field}.syscalls[${i}]`, why);
    for (const n of stringList(r['names'], `${field}.syscalls[${i}].names`)) {
      if (!/^[a-z0-9_]+$/.test(n)) refuse(`${field}.syscalls[${i}].names`, `${JSON.stringify(n)} is not a syscall name`);
      names.push(n);
    }
  }
  const errno = v['defaultErrnoRet'] === undefined ? 'EPERM' : String(uint(v['defaultErrnoRet'], `${field}.defaultErrnoRet`));
  if (action === 'SCMP_ACT_ALLOW' && (def === 'SCMP_ACT_ERRNO' || def === 'SCMP_ACT_KILL' || def === 'SCMP_ACT_KILL_PROCESS')) {
    out.add('SystemCallFilter', names.join(' '));
    if (def === 'SCMP_ACT_ERRNO') out.add('SystemCallErrorNumber', errno);
  } else if (def === 'SCMP_ACT_ALLOW' && (action === 'SCMP_ACT_ERRNO' || action === 'SCMP_ACT_KILL' || action === 'SCMP_ACT_KILL_PROCESS')) {
    out.add('SystemCallFilter', `~${names.join(' ')}`);
    if (action === 'SCMP_ACT_ERRNO') out.add('SystemCallErrorNumber', 'EPERM');
  } else refuse(`${field}.defaultAction`, why);
  if (v['architectures'] !== undefined) out.note('linux.seccomp.architectures not applied: SystemCallArchitectures= is left at systemd\'s default (native)');
}

function translateResources(v: unknown, out: Out): void {
  if (!isObject(v)) refuse('linux.resources', 'not an object');
  for (const [k, r] of Object.entries(v)) {
    const field = `linux.resources.${k}`;
    if (k === 'devices') {
      // Rules for every device at once ("a", no major/minor): the last one decides, as in the cgroup.
      // Rules for particular devices would need DeviceAllow= lines per node: refused.
      const whole = (d: unknown) => isObject(d) && typeof d['allow'] === 'boolean' && (d['type'] === undefined || d['type'] === 'a') && d['major'] === undefined && d['minor'] === undefined && (d['access'] === undefined || d['access'] === 'rwm');
      if (!Array.isArray(r) || !r.every(whole)) refuse(field, 'device cgroup rules for particular devices: the systemd backend gives a service either no devices or all of them');
      const last = r.at(-1) as Record<string, unknown> | undefined;
      if (last === undefined || last['allow'] === false) {
        out.add('DevicePolicy', 'closed');
        out.flags.add('devices-closed');
      }
    } else if (k === 'memory' && isObject(r) && Object.keys(r).every((x) => x === 'limit')) {
      if (r['limit'] !== undefined) out.add('MemoryMax', String(uint(r['limit'], `${field}.limit`)));
    } else if (k === 'pids' && isObject(r) && Object.keys(r).every((x) => x === 'limit')) {
      out.add('TasksMax', String(uint(r['limit'], `${field}.limit`)));
    } else if (k === 'cpu' && isObject(r) && Object.keys(r).every((x) => x === 'quota' || x === 'period')) {
      const period = r['period'] === undefined ? 100_000 : uint(r['period'], `${field}.period`);
      if (r['quota'] !== undefined) out.add('CPUQuota', `${Math.round((uint(r['quota'], `${field}.quota`) / period) * 100)}%`);
    } else if (!isEmpty(r)) refuse(field, 'no systemd setting of this backend takes it (memory.limit, pids.limit, cpu.quota/period and device denials do)');
  }
}

/**
 * One row per config.json field. Order matters where rows depend on each
 * other: /dev (PrivateDevices=) and the device policy before the mounts that
 * rely on them.
 */
export const NATIVE_ROWS: readonly NativeRow[] = [
  { field: 'ociVersion', keys: [], ignored: 'the spec\'s version' },
  { field: 'platform', keys: [], ignored: 'OCI 0.x: the image is already for this host' },
  { field: 'annotations', keys: [], ignored: 'annotations are for the runtime\'s hooks and tools' },
  { field: 'hooks', keys: [], refused: 'systemd runs no OCI hooks', refuseUnlessEmpty: true },
  { field: 'domainname', keys: [], refused: 'systemd 252 cannot set a service\'s domain name', refuseUnlessEmpty: true },
  { field: 'solaris', keys: [], refused: 'not Linux', refuseUnlessEmpty: true },
  { field: 'windows', keys: [], refused: 'not Linux', refuseUnlessEmpty: true },
  { field: 'vm', keys: [], refused: 'not a process container', refuseUnlessEmpty: true },
  {
    field: 'root.path',
    keys: ['RootDirectory'],
    apply: (v, out) => {
      if (v !== 'rootfs') refuse('root.path', 'must be rootfs');
      out.add('RootDirectory', noSpecifiers(out.ctx.rootDirectory));
    },
  },
  {
    field: 'root.readonly',
    keys: ['ProtectSystem'],
    apply: (v, out) => {
      if (v !== true) refuse('root.readonly', 'must be true');
      // ReadOnlyPaths=/ leaves the root of a RootDirectory= writable in 252; strict does not.
      out.add('ProtectSystem', 'strict');
    },
  },
  { field: 'process.terminal', keys: [], apply: (v) => void (v === true && refuse('process.terminal', 'a terminal: a system service has none')) },
  { field: 'process.consoleSize', keys: [], ignored: 'no terminal' },
  { field: 'process.args', keys: ['ExecStart'], apply: (v) => void stringList(v, 'process.args') },
  {
    field: 'process.env',
    keys: ['Environment', 'UnsetEnvironment'],
    apply: (v, out) => {
      const env = stringList(v, 'process.env');
      for (const e of env) out.add('Environment', quoteEnv(e, 'process.env'));
      const names = new Set(env.map(envVar));
      if (!names.has('HOME')) out.add('Environment', '"HOME=/"');
      const unset = MANAGER_VARIABLES.filter((n) => !names.has(n) && n !== 'HOME');
      if (unset.length > 0) out.add('UnsetEnvironment', unset.join(' '));
    },
  },
  { field: 'process.cwd', keys: ['WorkingDirectory'], apply: (v, out) => out.add('WorkingDirectory', absolutePath(v, 'process.cwd')) },
  {
    field: 'process.user.uid',
    keys: ['User'],
    apply: (v, out) => {
      const uid = uint(v, 'process.user.uid');
      knownId(out, 'uid', uid, 'process.user.uid');
      out.add('User', String(uid));
      if (uid !== 0) out.note(`user ${uid}: systemd also gives the process the host's group memberships of this user (initgroups) besides process.user.additionalGids`);
    },
  },
  {
    field: 'process.user.gid',
    keys: ['Group'],
    apply: (v, out) => {
      const gid = uint(v, 'process.user.gid');
      knownId(out, 'gid', gid, 'process.user.gid');
      out.add('Group', String(gid));
    },
  },
  {
    field: 'process.user.additionalGids',
    keys: ['SupplementaryGroups'],
    apply: (v, out) => {
      if (!Array.isArray(v)) refuse('process.user.additionalGids', 'not a list');
      const gids = v.map((g, i) => uint(g, `process.user.additionalGids[${i}]`));
      gids.forEach((g, i) => knownId(out, 'gid', g, `process.user.additionalGids[${i}]`));
      if (gids.length > 0) out.add('SupplementaryGroups', gids.join(' '));
    },
  },
  { field: 'process.user.umask', keys: ['UMask'], apply: (v, out) => out.add('UMask', uint(v, 'process.user.umask').toString(8).padStart(4, '0')) },
  { field: 'process.user.username', keys: [], ignored: 'Windows only' },
  { field: 'process.capabilities', keys: ['CapabilityBoundingSet', 'AmbientCapabilities'], apply: translateCapabilities },
  { field: 'process.noNewPrivileges', keys: ['NoNewPrivileges'], apply: (v, out) => out.add('NoNewPrivileges', v === true ? 'yes' : 'no') },
  {
    field: 'process.rlimits',
    keys: Object.values(RLIMITS),
    apply: (v, out) => {
      if (!Array.isArray(v)) refuse('process.rlimits', 'not a list');
      for (const [i, r] of v.entries()) {
        const key = isObject(r) && typeof r['type'] === 'string' ? RLIMITS[r['type']] : undefined;
        if (key === undefined || !isObject(r)) refuse(`process.rlimits[${i}]`, `${JSON.stringify(isObject(r) ? r['type'] : r)} is not a resource limit systemd knows`);
        const value = (x: unknown, f: string) => (typeof x === 'number' && x >= 2 ** 63 ? 'infinity' : String(uint(x, f)));
        out.add(key, `${value(r['soft'], `process.rlimits[${i}].soft`)}:${value(r['hard'], `process.rlimits[${i}].hard`)}`);
      }
    },
  },
  { field: 'process.oomScoreAdj', keys: ['OOMScoreAdjust'], apply: (v, out) => out.add('OOMScoreAdjust', String(typeof v === 'number' && Number.isInteger(v) && v >= -1000 && v <= 1000 ? v : refuse('process.oomScoreAdj', 'not an integer from -1000 to 1000'))) },
  { field: 'process.apparmorProfile', keys: ['AppArmorProfile'], apply: (v, out) => void (typeof v === 'string' && v !== '' && out.add('AppArmorProfile', noSpecifiers(v))) },
  { field: 'process.selinuxLabel', keys: ['SELinuxContext'], apply: (v, out) => void (typeof v === 'string' && v !== '' && out.add('SELinuxContext', noSpecifiers(v))) },
  { field: 'process.scheduler', keys: [], refused: 'sched_setattr() policies are not expressible per service in systemd 252', refuseUnlessEmpty: true },
  { field: 'process.ioPriority', keys: [], refused: 'use IOSchedulingClass= in the unit template instead', refuseUnlessEmpty: true },
  { field: 'process.execCPUAffinity', keys: [], refused: 'use CPUAffinity= in the unit template instead', refuseUnlessEmpty: true },
  {
    field: 'hostname',
    keys: ['ProtectHostname'],
    apply: (v) => void (typeof v === 'string' && v !== '' && refuse('hostname', `${JSON.stringify(v)}: systemd 252 cannot give a service a host name of its own (ProtectHostname= keeps the host's)`)),
  },
  { field: 'linux.resources', keys: ['DevicePolicy', 'MemoryMax', 'TasksMax', 'CPUQuota'], apply: translateResources },
  { field: 'linux.namespaces', keys: ['PrivateIPC', 'IPCNamespacePath', 'PrivateNetwork', 'NetworkNamespacePath', 'ProtectHostname', 'PrivateUsers'], apply: translateNamespaces },
  { field: 'linux.uidMappings', keys: ['PrivateUsers'], apply: () => undefined }, // checked with the user namespace
  { field: 'linux.gidMappings', keys: ['PrivateUsers'], apply: () => undefined },
  {
    field: 'mounts',
    keys: ['MountAPIVFS', 'PrivateDevices', 'ProtectKernelTunables', 'ProtectControlGroups', 'TemporaryFileSystem', 'BindPaths', 'BindReadOnlyPaths', 'ReadWritePaths', 'NoExecPaths'],
    apply: (v, out) => {
      if (!Array.isArray(v)) refuse('mounts', 'not a list');
      // A tmpfs /dev first: devpts and mqueue below it come with PrivateDevices=.
      if (v.some((m) => isObject(m) && m['destination'] === '/dev' && m['type'] === 'tmpfs')) out.flags.add('private-dev');
      v.forEach((m, i) => translateMount(m, i, out));
      if (out.flags.has('private-dev')) {
        const caps = isObject(out.spec.process.capabilities) ? out.spec.process.capabilities['bounding'] : undefined;
        const lost = ['CAP_MKNOD', 'CAP_SYS_RAWIO'].filter((c) => Array.isArray(caps) && caps.includes(c));
        if (lost.length > 0) out.note(`${lost.join(' and ')} not in the bounding set: PrivateDevices= removes ${lost.length === 1 ? 'it' : 'them'} (the runc backend's device cgroup denies device nodes anyway)`);
      }
    },
  },
  { field: 'linux.maskedPaths', keys: ['InaccessiblePaths'], apply: (v, out) => stringList(v, 'linux.maskedPaths').forEach((p, i) => out.add('InaccessiblePaths', `-${absolutePath(p, `linux.maskedPaths[${i}]`)}`)) },
  { field: 'linux.readonlyPaths', keys: ['ReadOnlyPaths'], apply: (v, out) => stringList(v, 'linux.readonlyPaths').forEach((p, i) => out.add('ReadOnlyPaths', `-${absolutePath(p, `linux.readonlyPaths[${i}]`)}`)) },
  { field: 'linux.seccomp', keys: ['SystemCallFilter', 'SystemCallErrorNumber'], apply: translateSeccomp },
  { field: 'linux.cgroupsPath', keys: [], ignored: 'the service\'s own cgroup holds the process' },
  {
    field: 'linux.rootfsPropagation',
    keys: [],
    apply: (v) => void (typeof v === 'string' && !BIND_PROPAGATION.has(v) && v !== '' && refuse('linux.rootfsPropagation', `${JSON.stringify(v)}: systemd's mount namespace propagates as slave`)),
  },
  { field: 'linux.apparmorProfile', keys: ['AppArmorProfile'], apply: (v, out) => void (typeof v === 'string' && v !== '' && out.add('AppArmorProfile', noSpecifiers(v))) }, // OCI 0.x's place
  { field: 'linux.mountLabel', keys: [], refused: 'systemd 252 has no per-service mount label', refuseUnlessEmpty: true },
  { field: 'linux.devices', keys: [], refused: 'device nodes: the systemd backend gives a service only API devices (PrivateDevices=)', refuseUnlessEmpty: true },
  { field: 'linux.sysctl', keys: [], refused: 'per-service sysctls: systemd 252 cannot set them', refuseUnlessEmpty: true },
  { field: 'linux.intelRdt', keys: [], refused: 'systemd 252 has no Intel RDT setting', refuseUnlessEmpty: true },
  { field: 'linux.personality', keys: [], refused: 'use Personality= in the unit template instead', refuseUnlessEmpty: true },
  { field: 'linux.timeOffsets', keys: [], refused: 'systemd 252 has no time namespace', refuseUnlessEmpty: true },
];

const ROW_BY_FIELD: ReadonlyMap<string, NativeRow> = new Map(NATIVE_ROWS.map((r) => [r.field, r]));
/** Objects whose members have rows of their own. */
const NESTED = new Set(['root', 'process', 'process.user', 'linux']);

/** Every leaf field of `spec` as dotted paths, in the table's order. */
function fieldsOf(spec: RuntimeSpec): Map<string, unknown> {
  const found = new Map<string, unknown>();
  const walk = (obj: Record<string, unknown>, prefix: string) => {
    for (const [k, v] of Object.entries(obj)) {
      const field = prefix === '' ? k : `${prefix}.${k}`;
      if (NESTED.has(field) && isObject(v)) walk(v, field);
      else found.set(field, v);
    }
  };
  walk(spec as unknown as Record<string, unknown>, '');
  return found;
}

/**
 * Translate a rendered, validated config.json. Throws USAGE naming the
 * first field systemd cannot express, with the hint to use an OCI runtime.
 */
export function translateSpec(spec: RuntimeSpec, ctx: NativeContext, what = 'config.json'): NativeTranslation {
  const entries: UnitEntry[] = [];
  const notes: string[] = [];
  const out: Out = { add: (k, v) => void entries.push([k, v]), note: (t) => void notes.push(t), spec, ctx, flags: new Set() };
  const fields = fieldsOf(spec);
  try {
    for (const field of fields.keys()) {
      if (!ROW_BY_FIELD.has(field)) refuse(field, 'berth cannot translate this field into unit settings');
    }
    for (const row of NATIVE_ROWS) {
      if (!fields.has(row.field)) continue;
      const value = fields.get(row.field);
      if (row.refused !== undefined) {
        if (!(row.refuseUnlessEmpty && isEmpty(value))) refuse(row.field, row.refused);
        continue;
      }
      row.apply?.(value, out);
    }
  } catch (e) {
    if (!(e instanceof Refusal)) throw e;
    throw new BerthError('USAGE', `${what}: ${e.field} cannot run with --runtime systemd: ${e.why}`, { hint: RUNC_HINT });
  }
  return { entries: dedupe(entries), execStart: spec.process.args, notes };
}

/** Single-valued keys given twice (MountAPIVFS= for /proc and /sys) once. */
function dedupe(entries: UnitEntry[]): UnitEntry[] {
  const seen = new Set<string>();
  return entries.filter(([k, v]) => {
    const id = `${k}=${v}`;
    if (seen.has(id)) return false;
    seen.add(id);
    return true;
  });
}

/** The image's command as an ExecStart= value (the systemd backend's $EXEC_START). */
export function nativeExecStart(args: readonly string[]): string {
  return args.map(quoteExecArg).join(' ');
}
