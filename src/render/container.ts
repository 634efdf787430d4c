/**
 * Everything berth renders for one system container, from an image's
 * exports and the install options: template values, config.json, the unit,
 * the tmpfiles.d file and the plan of host files. Pure apart from reading
 * the built-in templates and checking which bind-mount sources exist on the
 * host; nothing is written.
 *
 * Typical use (ops/install):
 *   const exports = await readExports(path.join(staging, 'rootfs'));
 *   const r = await renderContainer({ name, destDir: paths.current(name), ..., exports });
 *   write r.configJson to DEPLOYMENT/config.json, r.unit to /etc/systemd/system/NAME.service,
 *   r.tmpfiles to /etc/tmpfiles.d/NAME.conf (then systemd-tmpfiles --create it),
 *   applyHostFiles(r.hostfs) and keep its result in info.json with r.values.
 */
import { execFile } from 'node:child_process';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { errnoCode } from '../errors.ts';
import { ifExists } from '../fsutil.ts';
import type { ImageConfig } from '../image/manifest.ts';
import type { ImageExports } from './exports.ts';
import { planHostFiles, type PlannedHostFile } from './hostfs-plan.ts';
import { addNotifySocket, bindMountSources, fitSpecToHost, renderConfig, type HostFacts, type RuntimeSpec } from './oci-config.ts';
import { ORDERING_FLAGS, type Ordering } from './ordering.ts';
import { readinessFromLabels, type Readiness } from '../runtime/readiness.ts';
import { renderUnit } from './service.ts';
import { templateVariables } from './template.ts';
import { pathsCreatedBy, renderTmpfiles, tmpfilesForMissing } from './tmpfiles.ts';
import { runModeOf } from './unit-runtime.ts';
import { isSystemdBackend } from '../runtime/runtime.ts';
import { nativeExecStart, parseHostIds, translateSpec, type HostIds, type NativeTranslation } from './native-keys.ts';
import { ALL_CAPABILITIES, OVERRIDABLE_VARIABLES, resolveValues } from './values.ts';

export interface RenderInput {
  /** Container name (checked by the caller): unit NAME.service and runtime container ID. */
  name: string;
  /** The deployment directory the unit runs the container from (DESTDIR). */
  destDir: string;
  imageName: string;
  imageId: string;
  imageConfig: ImageConfig;
  exports: ImageExports;
  /** --set values (parseSetOptions). */
  set: Readonly<Record<string, string>>;
  /** Resolved path of the OCI runtime, or `systemd` for the systemd backend (render/native-keys.ts). */
  runtime: string;
  ordering: Ordering;
  /**
   * The slot's own directory, without symlinks: the systemd backend's
   * RootDirectory= is its rootfs (systemd 252 fails to set up a root reached
   * through a symlink such as DESTDIR). Default: destDir.
   */
  slotDir?: string;
  /** A readiness probe asked for by the user (--ready-*, a plan); else the image's berth.ready.* labels decide. */
  readiness?: Readiness | undefined;
  /** How units run berth (self.ts); for tests. */
  berth?: readonly string[];
  /** Where bind-mount sources are looked up; default "/". */
  hostRoot?: string;
  /** What the host offers (SELinux, capabilities); default: probed (hostFacts()). */
  hostFacts?: HostFacts;
  /** For tests: fixed UUID and HOST_UID/HOST_GID. */
  uuid?: string;
  uid?: number;
  gid?: number;
}

export interface Rendered {
  /** The values templates were rendered with (for info.json, and reused on update). */
  values: Record<string, string>;
  /** config.json text. */
  configJson: string;
  /** The unit text; undefined when manifest.json says noContainerService. */
  unit: string | undefined;
  /** The tmpfiles.d text; undefined when there is nothing to create. */
  tmpfiles: string | undefined;
  /** Host files to install (applyHostFiles). */
  hostfs: PlannedHostFile[];
  /** The readiness probe in the unit, if any. */
  readiness?: Readiness | undefined;
  /** With the systemd backend: how config.json became unit settings, and what differs from runc. */
  native?: NativeTranslation | undefined;
  warnings: string[];
}

export async function renderContainer(input: RenderInput): Promise<Rendered> {
  const { exports } = input;
  const manifest = exports.manifest;
  const warnings = [...exports.warnings];
  const hasUnit = manifest?.noContainerService !== true;
  const runMode = hasUnit ? runModeOf(exports.serviceTemplate) : 'detach';

  const resolved = resolveValues({
    name: input.name,
    destDir: input.destDir,
    imageName: input.imageName,
    imageId: input.imageId,
    runtime: input.runtime,
    runMode,
    set: input.set,
    imageDefaults: manifest?.defaultValues ?? {},
    ...(input.uuid === undefined ? {} : { uuid: input.uuid }),
    ...(input.uid === undefined ? {} : { uid: input.uid }),
    ...(input.gid === undefined ? {} : { gid: input.gid }),
  });
  const values = resolved.values;
  warnings.push(...resolved.warnings);

  const config = await renderConfig({
    name: input.name,
    image: input.imageConfig,
    values,
    ...(exports.configJson === undefined ? {} : { configJson: exports.configJson }),
    ...(exports.configTemplate === undefined ? {} : { configTemplate: exports.configTemplate }),
  });
  warnings.push(...config.warnings);
  if (config.source !== 'default') warnings.push(...fitSpecToHost(config.spec, input.hostFacts ?? (await hostFacts()), `/exports/${config.source}`));
  for (const name of config.rawVariables) {
    if (Object.hasOwn(input.set, name)) warnings.push(`config.json.template inserts $${name} as JSON (outside a string): --set ${name} is used as JSON`);
  }

  const host = planHostFiles({
    entries: exports.hostfs,
    renameFiles: manifest?.renameFiles ?? {},
    installedFilesTemplate: manifest?.installedFilesTemplate ?? [],
    values,
  });
  warnings.push(...host.warnings);

  // atomic generated `d` lines for missing bind-mount sources only when the image had no
  // tmpfiles.template; berth adds them after the template's lines as well, for the sources
  // neither the template nor the host files create: a container cannot start without them.
  const template = exports.tmpfilesTemplate === undefined ? undefined : renderTmpfiles(exports.tmpfilesTemplate, values);
  const created = pathsCreatedBy(template ?? '');
  const missing: string[] = [];
  const volatile: string[] = [];
  for (const raw of bindMountSources(config.spec)) {
    // "/var/run/" and "/var/run" are one source.
    const source = raw.replace(/\/+$/, '') || '/';
    // A source the image's host files or its tmpfiles.template create is not missing.
    if (host.plan.some((f) => f.path === source || f.path.startsWith(`${source}/`))) continue;
    if (created.has(source)) continue;
    // Under /run a source that exists now (made by another container) is gone after a
    // reboot: this container must be able to recreate it itself.
    if (!(await existsOnHost(input.hostRoot ?? '/', source))) missing.push(source);
    else if (isVolatile(source)) volatile.push(source);
  }
  const generated = tmpfilesForMissing(missing, volatile);
  const nativeBackend = isSystemdBackend(input.runtime);
  // After the sources are looked at: systemd's socket is systemd's to create.
  if (runMode === 'notify' && !nativeBackend) addNotifySocket(config.spec);
  // The systemd backend: refused here, before anything is installed, when config.json says what units cannot.
  let native: NativeTranslation | undefined;
  if (nativeBackend && hasUnit) {
    native = translateSpec(config.spec, { rootDirectory: `${input.slotDir ?? input.destDir}/rootfs`, hostIds: await hostIds(config.spec, input.hostRoot ?? '/') }, config.source === 'default' ? 'built-in config.json' : `/exports/${config.source}`);
    values['EXEC_START'] = nativeExecStart(native.execStart);
    warnings.push(...runtimeVariableWarnings(input, host.plan));
  }
  const tmpfiles = template !== undefined && generated !== undefined ? `${template.replace(/\n*$/, '\n')}${generated}` : (generated ?? (template?.trim() === '' ? undefined : template));

  let unit: string | undefined;
  const readiness = hasUnit ? (input.readiness ?? readinessFromLabels(input.imageConfig.config.Labels)) : undefined;
  if (!hasUnit) {
    if (exports.serviceTemplate !== undefined) warnings.push('manifest.json says noContainerService: /exports/service.template is not used');
    if (ORDERING_FLAGS.some(({ field }) => (input.ordering[field] ?? []).length > 0)) warnings.push('manifest.json says noContainerService: the ordering options have no unit to apply to');
  } else {
    const rendered = await renderUnit({
      values,
      ordering: input.ordering,
      runMode,
      readiness,
      native,
      ...(input.berth === undefined ? {} : { berth: input.berth }),
      ...(exports.serviceTemplate === undefined ? {} : { template: exports.serviceTemplate }),
    });
    unit = rendered.unit.toString();
    warnings.push(...rendered.warnings);
  }

  warnings.push(...unusedSetWarnings(input, host.plan));
  return { values, configJson: `${JSON.stringify(config.spec, null, 2)}\n`, unit, tmpfiles, hostfs: host.plan, readiness, native, warnings };
}

async function existsOnHost(root: string, p: string): Promise<boolean> {
  try {
    await stat(path.join(root, ...p.split('/').filter((c) => c !== '')));
    return true;
  } catch (e) {
    if (errnoCode(e) === 'ENOENT' || errnoCode(e) === 'ENOTDIR') return false;
    throw e;
  }
}

/** A --set the image never reads is most likely a typo. */
function unusedSetWarnings(input: RenderInput, plan: readonly PlannedHostFile[]): string[] {
  const { exports } = input;
  const texts = [
    exports.configTemplate ?? '',
    exports.serviceTemplate ?? '',
    exports.tmpfilesTemplate ?? '',
    ...Object.values(exports.manifest?.renameFiles ?? {}),
    ...exports.hostfs.flatMap((e) => (e.type === 'file' && plan.some((p) => p.type === 'file' && p.templated && p.source === e.path) ? [e.content.toString('utf8')] : [])),
  ];
  const used = new Set(texts.flatMap(templateVariables));
  const declared = new Set([...Object.keys(exports.manifest?.defaultValues ?? {}), ...OVERRIDABLE_VARIABLES]);
  return Object.keys(input.set)
    .filter((k) => !used.has(k) && !declared.has(k))
    .map((k) => `--set ${k}: the image's templates do not use ${k}`);
}

/**
 * Which of the spec's user and group IDs the host knows: getent(1) on this
 * host (every NSS source, as systemd looks them up), or the passwd and group
 * files of a test's host root.
 */
async function hostIds(spec: RuntimeSpec, root: string): Promise<HostIds> {
  const user = typeof spec.process.user === 'object' && spec.process.user !== null ? spec.process.user : { uid: 0, gid: 0 };
  const uids = [user.uid].filter((n) => typeof n === 'number');
  const gids = [user.gid, ...(Array.isArray(user.additionalGids) ? user.additionalGids : [])].filter((n) => typeof n === 'number');
  if (root !== '/') {
    const read = (f: string) => ifExists(readFile(path.join(root, 'etc', f), 'utf8'));
    return parseHostIds((await read('passwd')) ?? '', (await read('group')) ?? '');
  }
  const known = async (db: string, id: number) => (await getent(db, id)) ? [id] : [];
  return { uids: new Set((await Promise.all(uids.map((id) => known('passwd', id)))).flat()), gids: new Set((await Promise.all(gids.map((id) => known('group', id)))).flat()) };
}

function getent(db: string, id: number): Promise<boolean> {
  return new Promise((resolve) => execFile('getent', [db, String(id)], { timeout: 10_000 }, (e) => resolve(e === null)));
}

/** Templates that run $RUNTIME themselves (an `exec` wrapper among the host files) have no OCI runtime with the systemd backend. */
function runtimeVariableWarnings(input: RenderInput, plan: readonly PlannedHostFile[]): string[] {
  const { exports } = input;
  const sources: [string, string][] = [
    ['service.template', exports.serviceTemplate ?? ''],
    ...exports.hostfs.flatMap((e): [string, string][] => (e.type === 'file' && plan.some((p) => p.type === 'file' && p.templated && p.source === e.path) ? [[`hostfs/${e.path}`, e.content.toString('utf8')]] : [])),
  ];
  return sources.filter(([, text]) => templateVariables(text).includes('RUNTIME')).map(([file]) => `${file} uses $RUNTIME: with --runtime systemd there is no OCI runtime (RUNTIME is /bin/false)`);
}

/** Paths on tmpfs that a reboot empties (below /run; /run itself is always there). */
function isVolatile(p: string): boolean {
  return /^\/(run|var\/run)\/./.test(p);
}

/** This host: SELinux enabled, and the capabilities of berth's bounding set (capability numbers in ALL_CAPABILITIES order). */
export async function hostFacts(): Promise<HostFacts> {
  const selinux = await stat('/sys/fs/selinux/enforce').then(() => true, () => false);
  const status = await readFile('/proc/self/status', 'utf8').catch(() => '');
  const hex = /^CapBnd:\s*([0-9a-f]+)$/m.exec(status)?.[1];
  if (hex === undefined) return { selinux, capabilities: undefined };
  const bits = BigInt(`0x${hex}`);
  // Capabilities newer than berth's list are unknown to it: not dropped, not granted by name.
  const capabilities = new Set(ALL_CAPABILITIES.filter((_, bit) => (bits >> BigInt(bit)) & 1n));
  return { selinux, capabilities };
}
