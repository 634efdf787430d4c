/**
 * The OCI runtime config.json of a system container. The default is built
 * from templates/config.json plus the image config as data (never by
 * splicing strings into JSON), then validated like any image-provided one.
 */
import { BerthError } from '../errors.ts';
import type { ImageConfig } from '../image/manifest.ts';
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
