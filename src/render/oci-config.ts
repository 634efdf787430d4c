/**
 * The OCI runtime config.json of a system container. The default is built
 * from templates/config.json plus the image config as data (never by
 * splicing strings into JSON), then validated like any image-provided one.
 */
import { BerthError } from '../errors.ts';
import type { ImageConfig } from '../image/manifest.ts';
import { NOTIFY_SOCKET_IN_CONTAINER, SYSTEMD_NOTIFY_SOCKET } from '../runtime/runtime.ts';
import { parseStrictJson } from '../strict-json.ts';
import { substituteJson } from './json-template.ts';
import { ALL_CAPABILITIES } from './values.ts';

const KNOWN_CAPABILITIES: ReadonlySet<string> = new Set(ALL_CAPABILITIES);
import { readBuiltinTemplate } from './templates.ts';

/** The subset of the OCI runtime spec berth reads or writes; other fields pass through. */
export interface RuntimeSpec {
  ociVersion: string;
  process: {
    terminal?: boolean;
    user: { uid: number; gid: number; additionalGids?: number[] };
    args: string[];
    env?: string[];
    cwd: string;
    [k: string]: unknown;
  };
  root: { path: string; readonly?: boolean };
  mounts?: { destination: string; type?: string; source?: string; options?: string[] }[];
  linux?: { cgroupsPath?: string; namespaces?: { type: string; path?: string }[]; [k: string]: unknown };
  [k: string]: unknown;
}

export interface DefaultConfigInput {
  /** Container (and service) name. */
  name: string;
  image: ImageConfig;
}

export async function renderDefaultConfig(input: DefaultConfigInput): Promise<RuntimeSpec> {
  const spec = JSON.parse(await readBuiltinTemplate('config.json')) as RuntimeSpec;
  const c = input.image.config;
  const args = [...(c.Entrypoint ?? []), ...(c.Cmd ?? [])];
  if (args.length === 0) {
    throw new BerthError('USAGE', `image for ${input.name} has no Entrypoint or Cmd`, {
      hint: 'the image must say what to run (or ship /exports/config.json.template)',
    });
  }
  spec.process.args = args;
  spec.process.env = mergeEnv(spec.process.env ?? [], c.Env ?? []);
  spec.process.cwd = c.WorkingDir || '/';
  spec.process.user = parseUser(c.User, input.name);
  spec.linux = { ...spec.linux, cgroupsPath: serviceCgroupPath(input.name) };
  return validateConfig(spec, `default config.json of ${input.name}`);
}

/**
 * The container's cgroup inside its service's: with Delegate=yes systemd
 * then tracks (and kills) the container's processes as the service's.
 */
export function serviceCgroupPath(name: string): string {
  return `/system.slice/${name}.service/container`;
}

/** Image Env overrides the defaults by variable name; order is kept. */
function mergeEnv(defaults: readonly string[], image: readonly string[]): string[] {
  const out = new Map<string, string>();
  for (const e of [...defaults, ...image]) {
    const eq = e.indexOf('=');
    out.set(eq < 0 ? e : e.slice(0, eq), e);
  }
  return [...out.values()];
}

function parseUser(user: string | undefined, name: string): { uid: number; gid: number } {
  if (user === undefined || user === '' || user === 'root' || user === '0') return { uid: 0, gid: 0 };
  const m = /^(\d{1,10})(?::(\d{1,10}))?$/.exec(user);
  if (!m) {
    throw new BerthError('USAGE', `image for ${name} runs as user "${user}"; only numeric UID[:GID] is supported`, {
      hint: 'rebuild the image with a numeric USER, or ship /exports/config.json.template',
    });
  }
  const uid = Number(m[1]);
  return { uid, gid: m[2] === undefined ? uid : Number(m[2]) };
}

/** Checks every config.json, built-in or from an image: a system container is read-only. */
export function validateConfig(spec: RuntimeSpec, what: string): RuntimeSpec {
  const fail = (why: string, hint: string) => new BerthError('USAGE', `${what}: ${why}`, { hint });
  if (typeof spec !== 'object' || spec === null || typeof spec.process !== 'object' || typeof spec.root !== 'object') {
    throw fail('not a runtime spec (missing process or root)', 'see the OCI runtime spec');
  }
  if (spec.root.path !== 'rootfs') throw fail(`root.path is ${JSON.stringify(spec.root.path)}, must be "rootfs"`, 'the container runs from its checkout in the deployment directory');
  if (spec.root.readonly !== true) throw fail('root.readonly must be true', 'system containers run from a read-only checkout; write to bind mounts or tmpfs');
  if (!Array.isArray(spec.process.args) || spec.process.args.length === 0 || spec.process.args.some((a) => typeof a !== 'string')) {
    throw fail('process.args must be a non-empty list of strings', 'give the command to run');
  }
  if (spec.process.args.some((a) => a.includes('\0'))) throw fail('process.args contains a NUL byte', 'fix the command');
  return spec;
}

export interface ConfigInput {
  name: string;
  image: ImageConfig;
  /** /exports/config.json (used as is) and /exports/config.json.template (substituted). */
  configJson?: string;
  configTemplate?: string;
  values: Readonly<Record<string, string>>;
}

export interface RenderedConfig {
  spec: RuntimeSpec;
  source: 'config.json' | 'config.json.template' | 'default';
  /** Variables the template inserted as JSON (outside strings); see json-template.ts. */
  rawVariables: string[];
  warnings: string[];
}

/**
 * config.json of a system container: the image's /exports/config.json, else
 * its config.json.template, else berth's default; validated in every case,
 * and put into the service's cgroup unless the image chose a cgroup itself.
 */
export async function renderConfig(input: ConfigInput): Promise<RenderedConfig> {
  const warnings: string[] = [];
  let text: string;
  let source: RenderedConfig['source'];
  let rawVariables: string[] = [];
  if (input.configJson !== undefined) {
    source = 'config.json';
    text = input.configJson;
    if (input.configTemplate !== undefined) warnings.push('the image has both /exports/config.json and config.json.template; config.json is used, as atomic did');
  } else if (input.configTemplate !== undefined) {
    source = 'config.json.template';
    const result = substituteJson(input.configTemplate, input.values, '/exports/config.json.template');
    text = result.text;
    rawVariables = result.rawVariables;
  } else {
    return { spec: await renderDefaultConfig({ name: input.name, image: input.image }), source: 'default', rawVariables, warnings };
  }
  const what = `/exports/${source}`;
  let spec: RuntimeSpec;
  try {
    // Strictly first: a member given twice (say, by a value inserted as JSON) means one thing to berth's checks and maybe another to the runtime.
    parseStrictJson(text);
    spec = JSON.parse(text) as RuntimeSpec;
  } catch (e) {
    throw new BerthError('USAGE', `${what}${source === 'config.json.template' ? ' (rendered)' : ''} is not JSON: ${(e as Error).message}`, {
      hint: source === 'config.json.template' ? 'check the values inserted as JSON (outside strings) in the template' : 'the image ships a broken config.json',
    });
  }
  validateConfig(spec, what);
  warnings.push(...upgradeLegacySpec(spec, what));
  if (spec.linux === undefined || spec.linux === null) spec.linux = {};
  if (typeof spec.linux !== 'object' || Array.isArray(spec.linux)) throw new BerthError('USAGE', `${what}: "linux" must be an object`, { hint: 'see the OCI runtime spec' });
  const cgroup = serviceCgroupPath(input.name);
  if (spec.linux.cgroupsPath === undefined) spec.linux.cgroupsPath = cgroup;
  else if (spec.linux.cgroupsPath !== cgroup) warnings.push(`${what} sets linux.cgroupsPath ${JSON.stringify(spec.linux.cgroupsPath)}: the container runs outside its service's cgroup, so systemd does not track its processes`);
  return { spec, source, rawVariables, warnings };
}

const CAPABILITY_SETS = ['bounding', 'effective', 'inheritable', 'permitted', 'ambient'] as const;

/**
 * Spellings of runtime specs before OCI 1.0 that atomic's images still use
 * and today's runc and crun refuse or silently ignore:
 *  - process.capabilities as a plain list (1.0.0-rc3 and before): one list for
 *    every set, as runc applied it then; runc 1.1 fails to parse it;
 *  - linux.capabilities and linux.rlimits (0.x): moved to process, where
 *    today's runtimes read them (else the process runs without capabilities).
 * Rewritten in place, each with a warning.
 */
export function upgradeLegacySpec(spec: RuntimeSpec, what: string): string[] {
  const warnings: string[] = [];
  const isCapList = (v: unknown): v is string[] => Array.isArray(v) && v.every((c) => typeof c === 'string');
  const linux = typeof spec.linux === 'object' && spec.linux !== null && !Array.isArray(spec.linux) ? spec.linux : undefined;
  if (linux !== undefined && isCapList(linux['capabilities']) && spec.process.capabilities === undefined) {
    spec.process.capabilities = linux['capabilities'];
    delete linux['capabilities'];
    warnings.push(`${what}: linux.capabilities (OCI 0.x) moved to process.capabilities`);
  }
  if (linux !== undefined && Array.isArray(linux['rlimits']) && spec.process['rlimits'] === undefined) {
    spec.process['rlimits'] = linux['rlimits'];
    delete linux['rlimits'];
    warnings.push(`${what}: linux.rlimits (OCI 0.x) moved to process.rlimits`);
  }
  const caps = spec.process.capabilities;
  if (isCapList(caps)) {
    spec.process.capabilities = Object.fromEntries(CAPABILITY_SETS.map((set) => [set, [...caps]]));
    warnings.push(`${what}: process.capabilities is a list (OCI 1.0.0-rc3): used for the bounding, effective, inheritable, permitted and ambient sets`);
  }
  return warnings;
}

/** What the host offers that a runtime spec may ask for. */
export interface HostFacts {
  /** SELinux is enabled (/sys/fs/selinux/enforce exists). */
  selinux: boolean;
  /** The capabilities in berth's bounding set (what the runtime can grant); undefined: unknown, keep all. */
  capabilities: ReadonlySet<string> | undefined;
}

/**
 * Fit an image's spec to this host, as atomic's hosts (Fedora, CentOS, with
 * SELinux and every capability) ran it:
 *  - without SELinux, process.selinuxLabel and linux.mountLabel are dropped:
 *    runc refuses a label it cannot apply ("selinux is disabled"), where
 *    systemd ignores the unit's SELinuxContext= on such a host;
 *  - a capability the host itself lacks (a bounding set without it, as in
 *    some sandboxes) cannot be granted: runc fails "unable to apply caps:
 *    operation not permitted"; it is removed from every set.
 */
export function fitSpecToHost(spec: RuntimeSpec, host: HostFacts, what: string): string[] {
  const warnings: string[] = [];
  if (!host.selinux) {
    if (typeof spec.process['selinuxLabel'] === 'string' && spec.process['selinuxLabel'] !== '') {
      warnings.push(`${what}: process.selinuxLabel ${spec.process['selinuxLabel']} not applied: SELinux is not enabled on this host`);
    }
    delete spec.process['selinuxLabel'];
    if (spec.linux && typeof spec.linux['mountLabel'] === 'string') {
      if (spec.linux['mountLabel'] !== '') warnings.push(`${what}: linux.mountLabel not applied: SELinux is not enabled on this host`);
      delete spec.linux['mountLabel'];
    }
  }
  const caps = spec.process.capabilities;
  if (host.capabilities !== undefined && typeof caps === 'object' && caps !== null && !Array.isArray(caps)) {
    const dropped = new Set<string>();
    for (const [set, list] of Object.entries(caps as Record<string, unknown>)) {
      if (!Array.isArray(list)) continue;
      (caps as Record<string, unknown>)[set] = list.filter((c) => {
        // A name berth does not know (newer than ALL_CAPABILITIES) is left to the runtime.
        const keep = typeof c !== 'string' || !KNOWN_CAPABILITIES.has(c) || host.capabilities!.has(c);
        if (!keep) dropped.add(c as string);
        return keep;
      });
    }
    if (dropped.size > 0) warnings.push(`${what}: ${[...dropped].join(', ')} not granted: this host's capability bounding set lacks ${dropped.size === 1 ? 'it' : 'them'}`);
  }
  return warnings;
}

/** Sources of the bind mounts of a spec (absolute host paths). */
export function bindMountSources(spec: RuntimeSpec): string[] {
  const out: string[] = [];
  for (const m of Array.isArray(spec.mounts) ? spec.mounts : []) {
    if (typeof m !== 'object' || m === null || typeof m.source !== 'string' || !m.source.startsWith('/')) continue;
    const options = Array.isArray(m.options) ? m.options : [];
    if (m.type === 'bind' || options.includes('bind') || options.includes('rbind')) out.push(m.source);
  }
  return out;
}

/**
 * Give the container systemd's notification socket (for Type=notify; see
 * runtime.ts): a bind mount of the manager's socket, last so that no other
 * mount hides it, and NOTIFY_SOCKET pointing at it, replacing any the image
 * set. The mount point lands in the container's /run when the spec mounts
 * one there; otherwise the runtime creates it in the rootfs, as it does for
 * its own notify socket.
 */
export function addNotifySocket(spec: RuntimeSpec): void {
  spec.mounts = [
    ...(Array.isArray(spec.mounts) ? spec.mounts.filter((m) => m?.destination !== NOTIFY_SOCKET_IN_CONTAINER) : []),
    { destination: NOTIFY_SOCKET_IN_CONTAINER, type: 'bind', source: SYSTEMD_NOTIFY_SOCKET, options: ['bind', 'nosuid', 'nodev', 'noexec'] },
  ];
  const env = Array.isArray(spec.process.env) ? spec.process.env.filter((e) => typeof e === 'string' && !e.startsWith('NOTIFY_SOCKET=')) : [];
  spec.process.env = [...env, `NOTIFY_SOCKET=${NOTIFY_SOCKET_IN_CONTAINER}`];
}
