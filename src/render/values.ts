/**
 * The variables templates are rendered with, following atomic's names.
 *
 * Precedence: forced variables (berth computes them, nobody overrides them)
 * > --set > the image's manifest.json defaultValues > berth's defaults.
 * atomic filled its OS defaults (RUN_DIRECTORY, PIDFILE, ...) before reading
 * defaultValues and only set keys still missing, so an image's default for
 * e.g. CONF_DIRECTORY never applied; berth lets the image's default win.
 *
 * Values do not refer to each other ("$NAME" in a value stays literal), as
 * in atomic; the one derived default is PIDFILE, computed from the final
 * RUN_DIRECTORY and NAME.
 */
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { BerthError } from '../errors.ts';
import { isSystemdBackend, NATIVE_NOOP, NO_OCI_RUNTIME, runtimeCommands, type RunMode } from '../runtime/runtime.ts';
import { BERTH_ENTRY } from '../self.ts';
import { execLine } from './unit-file.ts';

/** Computed by berth for every install; --set or an image default for one is refused. */
export const FORCED_VARIABLES = [
  'DESTDIR',
  'NAME',
  'EXEC_START',
  'EXEC_STOP',
  'EXEC_STARTPRE',
  'EXEC_STOPPOST',
  'HOST_UID',
  'HOST_GID',
  'IMAGE_NAME',
  'IMAGE_ID',
] as const;

/** Defaults berth provides; --set and image defaults override them. */
export const OVERRIDABLE_VARIABLES = ['RUN_DIRECTORY', 'STATE_DIRECTORY', 'CONF_DIRECTORY', 'PIDFILE', 'UUID', 'ALL_PROCESS_CAPABILITIES', 'RUNTIME', 'ATOMIC'] as const;

/** Overridable variables that must hold an absolute, normalised path. */
const PATH_VARIABLES: ReadonlySet<string> = new Set(['RUN_DIRECTORY', 'STATE_DIRECTORY', 'CONF_DIRECTORY', 'PIDFILE', 'RUNTIME', 'ATOMIC']);

/**
 * Every capability Linux knows (capabilities(7), up to 6.x), as atomic's
 * ALL_PROCESS_CAPABILITIES: quoted and comma-separated, to be placed inside
 * a JSON list of a config.json.template (outside a string).
 */
export const ALL_CAPABILITIES = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_SETGID', 'CAP_SETUID',
  'CAP_SETPCAP', 'CAP_LINUX_IMMUTABLE', 'CAP_NET_BIND_SERVICE', 'CAP_NET_BROADCAST', 'CAP_NET_ADMIN', 'CAP_NET_RAW', 'CAP_IPC_LOCK',
  'CAP_IPC_OWNER', 'CAP_SYS_MODULE', 'CAP_SYS_RAWIO', 'CAP_SYS_CHROOT', 'CAP_SYS_PTRACE', 'CAP_SYS_PACCT', 'CAP_SYS_ADMIN',
  'CAP_SYS_BOOT', 'CAP_SYS_NICE', 'CAP_SYS_RESOURCE', 'CAP_SYS_TIME', 'CAP_SYS_TTY_CONFIG', 'CAP_MKNOD', 'CAP_LEASE',
  'CAP_AUDIT_WRITE', 'CAP_AUDIT_CONTROL', 'CAP_SETFCAP', 'CAP_MAC_OVERRIDE', 'CAP_MAC_ADMIN', 'CAP_SYSLOG', 'CAP_WAKE_ALARM',
  'CAP_BLOCK_SUSPEND', 'CAP_AUDIT_READ', 'CAP_PERFMON', 'CAP_BPF', 'CAP_CHECKPOINT_RESTORE',
] as const;

const identifierRe = /^[_a-zA-Z][_a-zA-Z0-9]*$/;
const forced: ReadonlySet<string> = new Set(FORCED_VARIABLES);

export function isForcedVariable(name: string): boolean {
  return forced.has(name);
}

/** A value reaches unit files, tmpfiles lines and paths verbatim: a newline or NUL would inject lines. */
export function checkValue(key: string, value: string, where: string): void {
  if (/[\n\r\0]/.test(value)) {
    throw new BerthError('USAGE', `${where}: value of ${key} contains a newline or NUL`, { hint: 'template values must be a single line' });
  }
}

function checkKey(key: string, where: string): void {
  // "__proto__" is an identifier too, but as a record key it would set the prototype.
  if (!identifierRe.test(key) || key === '__proto__') {
    throw new BerthError('USAGE', `${where}: ${JSON.stringify(key.slice(0, 80))} is not a variable name`, {
      hint: 'variable names are letters, digits and _, not starting with a digit',
    });
  }
}

/** Parse repeated `--set KEY=VALUE` options; a later KEY replaces an earlier one. */
export function parseSetOptions(options: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const option of options) {
    const eq = option.indexOf('=');
    if (eq < 0) throw new BerthError('USAGE', `--set ${JSON.stringify(option.slice(0, 80))}: expected KEY=VALUE`, { hint: 'write --set KEY=VALUE' });
    const key = option.slice(0, eq);
    const value = option.slice(eq + 1);
    checkKey(key, '--set');
    checkValue(key, value, '--set');
    out[key] = value;
  }
  checkSetValues(out);
  return out;
}

/** --set of a forced variable is a usage error (atomic silently ignored it). */
export function checkSetValues(set: Readonly<Record<string, string>>): void {
  for (const [key, value] of Object.entries(set)) {
    checkKey(key, '--set');
    checkValue(key, value, '--set');
    if (forced.has(key)) {
      throw new BerthError('USAGE', `--set ${key}: ${key} is set by berth and cannot be overridden`, {
        hint: `berth computes ${FORCED_VARIABLES.join(', ')} for every install`,
      });
    }
  }
}

export interface ValuesInput {
  name: string;
  /** The deployment directory the unit runs the container from (DESTDIR). */
  destDir: string;
  imageName: string;
  imageId: string;
  /** Resolved path of the OCI runtime (the default for RUNTIME). */
  runtime: string;
  /** How EXEC_START runs the container, from the unit's Type= (default detach). */
  runMode?: RunMode;
  /** --set values (already parsed). */
  set: Readonly<Record<string, string>>;
  /** manifest.json defaultValues. */
  imageDefaults?: Readonly<Record<string, string>>;
  /** For tests; defaults: this process's uid/gid and a fresh UUID. */
  uid?: number;
  gid?: number;
  uuid?: string;
}

export interface ResolvedValues {
  values: Record<string, string>;
  warnings: string[];
}

export function resolveValues(input: ValuesInput): ResolvedValues {
  checkSetValues(input.set);
  const warnings: string[] = [];
  const imageDefaults: Record<string, string> = {};
  for (const [key, value] of Object.entries(input.imageDefaults ?? {})) {
    checkKey(key, 'manifest.json defaultValues');
    checkValue(key, value, 'manifest.json defaultValues');
    if (forced.has(key)) warnings.push(`manifest.json sets a default for ${key}, which berth computes; the image's value is ignored`);
    else imageDefaults[key] = value;
  }
  const pick = (key: string): { value: string; from: string } | undefined => {
    if (Object.hasOwn(input.set, key)) return { value: input.set[key]!, from: `--set ${key}` };
    if (Object.hasOwn(imageDefaults, key)) return { value: imageDefaults[key]!, from: `manifest.json default for ${key}` };
    return undefined;
  };

  const values: Record<string, string> = { ...imageDefaults, ...input.set };
  const defaults: Record<string, string> = {
    RUN_DIRECTORY: '/run',
    STATE_DIRECTORY: '/var/lib',
    CONF_DIRECTORY: '/etc',
    UUID: input.uuid ?? randomUUID(),
    ALL_PROCESS_CAPABILITIES: ALL_CAPABILITIES.map((c) => `"${c}"`).join(', '),
    RUNTIME: isSystemdBackend(input.runtime) ? NO_OCI_RUNTIME : input.runtime,
    // atomic's ATOMIC was the path of atomic itself; berth's is berth's.
    ATOMIC: BERTH_ENTRY,
  };
  for (const [key, value] of Object.entries(defaults)) values[key] = pick(key)?.value ?? value;
  // atomic's PIDFILE: one file per container directly in RUN_DIRECTORY, which always exists.
  values['PIDFILE'] = pick('PIDFILE')?.value ?? `${values['RUN_DIRECTORY']!.replace(/\/+$/, '')}/container-${input.name}.pid`;
  for (const key of PATH_VARIABLES) checkAbsolute(key, values[key]!, pick(key)?.from ?? 'berth default');

  const runtime = values['RUNTIME']!;
  const native = isSystemdBackend(input.runtime);
  if (!native && runtime !== input.runtime) warnings.push(`RUNTIME is ${runtime} (from ${pick('RUNTIME')?.from}), not the runtime berth found (${input.runtime})`);
  const commands = runtimeCommands(runtime, input.name, input.destDir, values['PIDFILE']!, input.runMode);
  Object.assign(values, {
    DESTDIR: input.destDir,
    NAME: input.name,
    // The systemd backend's EXEC_START is the image's command: renderContainer sets it from config.json.
    EXEC_START: native ? NATIVE_NOOP : execLine(commands.run),
    // Kept for templates that name it; renderUnit drops an ExecStop= of exactly this value (see unit-runtime.ts).
    EXEC_STOP: native ? NATIVE_NOOP : execLine(commands.kill),
    EXEC_STARTPRE: native ? NATIVE_NOOP : execLine(commands.delete),
    EXEC_STOPPOST: native ? NATIVE_NOOP : execLine(commands.delete),
    HOST_UID: String(input.uid ?? process.getuid?.() ?? 0),
    HOST_GID: String(input.gid ?? process.getgid?.() ?? 0),
    IMAGE_NAME: input.imageName,
    IMAGE_ID: input.imageId,
  });
  for (const [key, value] of Object.entries(values)) checkValue(key, value, 'template values');
  return { values, warnings };
}

function checkAbsolute(key: string, value: string, from: string): void {
  const stripped = value.length > 1 ? value.replace(/\/+$/, '') : value;
  if (!stripped.startsWith('/') || path.posix.normalize(stripped) !== stripped || /\s/.test(stripped)) {
    throw new BerthError('USAGE', `${key} must be an absolute, normalised path without spaces; ${from} gives ${JSON.stringify(value.slice(0, 200))}`, {
      hint: `give ${key} a path such as ${key === 'RUNTIME' ? '/usr/sbin/runc' : '/run'}`,
    });
  }
}
