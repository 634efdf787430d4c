/**
 * The steps that make and unmake a deployment, shared by install, update and
 * rollback:
 *   stage    check the image out of the store into a hidden staging directory,
 *            read its /exports, render config.json, the unit and tmpfiles, and
 *            write them with info.json next to the rootfs;
 *   commit   rename the staging directory into a slot;
 *   activate put the slot's unit, tmpfiles and host files in place and point
 *            NAME at the slot.
 * Every step that changes the host pushes its inverse onto an Undo stack, so
 * a failure anywhere puts the host back as it was. A SIGKILL takes the stack
 * with it: for that, callers keep a write-ahead intent (deploy/intent.ts)
 * that ops/recover.ts acts on.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { crashPoint } from '../crashpoint.ts';
import { formatReference } from '../transport/index.ts';
import type { ImageReference } from '../transport/reference.ts';
import { absentHostFiles, applyHostFiles, removeHostFiles, type InstalledHostFiles } from '../deploy/hostfs.ts';
import type { IntentLog } from '../deploy/intent.ts';
import { readlinkIfLink, replaceSymlink, writeFileAtomic } from '../fsutil.ts';
import { syncDir, syncFilesystem } from '../durable.ts';
import { readInfo, writeInfo, type DeploymentInfo } from '../deploy/info.ts';
import type { Paths } from '../deploy/paths.ts';
import { installTmpfiles, removeTmpfiles } from '../deploy/tmpfiles.ts';
import { renderContainer, type Rendered } from '../render/container.ts';
import type { RuntimeSpec } from '../render/oci-config.ts';
import { missingInRootfs } from '../share/reader.ts';
import { BerthError } from '../errors.ts';
import { readExports } from '../render/exports.ts';
import type { Readiness } from '../runtime/readiness.ts';
import type { RuntimeChoice } from '../runtime/runtime.ts';
import type { Ordering } from '../render/ordering.ts';
import { UnitFile } from '../render/unit-file.ts';
import { HOST_COMMAND_PREFIX } from '../render/unit-runtime.ts';
import type { Store } from '../store/store.ts';
import type { StoredImage } from '../store/types.ts';
import type { OpContext } from './context.ts';

/** Inverse steps, run last-first; each failure is reported and the rest still run. */
export class Undo {
  private readonly steps: { what: string; run: () => Promise<unknown> }[] = [];

  push(what: string, run: () => Promise<unknown>): void {
    this.steps.push({ what, run });
  }

  async run(report: OpContext['report']): Promise<void> {
    for (const step of this.steps.reverse()) {
      await step.run().catch((e: unknown) => report.warn(`undo ${step.what}: ${(e as Error).message}`));
    }
    this.steps.length = 0;
  }

  /** Forget the steps: the change is committed. */
  clear(): void {
    this.steps.length = 0;
  }
}

export interface DeploySpec {
  name: string;
  ref: ImageReference;
  image: StoredImage;
  set: Record<string, string>;
  ordering: Ordering;
  /** As requested (runc, crun or a path) and as resolved to a path. */
  runtimeName: string;
  runtime: string;
  /** Who chose the runtime: an option (--runtime, a plan), the image's berth.runtime label, or berth's default. */
  runtimeFrom?: RuntimeChoice['from'];
  healthCmd?: string[];
  /** A readiness probe asked for by the user (else the image's labels decide). */
  ready?: Readiness | undefined;
  autoUpdate?: boolean;
  /** Reuse the UUID of an earlier deployment (updates keep the container's identity). */
  uuid?: string;
  /** Run from this shared store's read-only checkout instead of checking the image out (ops/share-source.ts). */
  shared?: { share: string; rootfs: string } | undefined;
}

export interface Staged {
  dir: string;
  info: DeploymentInfo;
  rendered: Rendered;
}

/** Build a complete deployment in a staging directory (removed by `undo` on failure), to be committed into `slot`. */
export async function stage(ctx: OpContext, store: Store, spec: DeploySpec, undo: Undo, slot: 0 | 1): Promise<Staged> {
  const { paths, report } = ctx;
  await fs.mkdir(paths.containers, { recursive: true, mode: 0o700 });
  const dir = paths.staging(spec.name);
  undo.push(`staging ${dir}`, () => fs.rm(dir, { recursive: true, force: true }));
  await fs.mkdir(dir, { mode: 0o755 });
  let rootfs = path.join(dir, 'rootfs');
  if (spec.shared === undefined) {
    const checkout = await store.checkout(spec.image.manifestDigest, rootfs);
    report.step(`Checked out ${checkout.files} files, ${checkout.dirs} directories, ${checkout.links} symlinks`);
  } else {
    rootfs = spec.shared.rootfs;
    report.step(`Running from ${rootfs} (shared store, read-only): nothing checked out`);
  }
  const exports = await readExports(rootfs);
  const rendered = await renderContainer({
    name: spec.name,
    destDir: paths.current(spec.name),
    imageName: formatReference(spec.ref),
    imageId: spec.image.manifestDigest,
    imageConfig: spec.image.config,
    exports,
    set: spec.set,
    runtime: spec.runtime,
    ordering: spec.ordering,
    readiness: spec.ready,
    // systemd 252 cannot set up a RootDirectory= reached through a symlink (EBUSY): the slot's own path, resolved.
    slotDir: path.join(await fs.realpath(paths.containers), path.basename(paths.slot(spec.name, slot))),
    ...(spec.uuid === undefined ? {} : { uuid: spec.uuid }),
  });
  for (const w of rendered.warnings) report.warn(w);
  if (spec.shared !== undefined) rendered.configJson = await rootOnShare(rendered.configJson, spec.shared.rootfs);
  if (rendered.unit !== undefined && rendered.tmpfiles !== undefined) {
    // Directories under /run vanish at reboot; creating them right before the start does
    // not depend on the boot's systemd-tmpfiles-setup having run (or on its ordering).
    // With the systemd backend the unit's commands run in its mount namespace unless told otherwise.
    rendered.unit = UnitFile.parse(rendered.unit, 'rendered unit')
      .add('Service', 'ExecStartPre', `-${rendered.native ? HOST_COMMAND_PREFIX : ''}systemd-tmpfiles --create ${paths.tmpfilesFile(spec.name)}`)
      .toString();
  }
  await fs.writeFile(path.join(dir, 'config.json'), rendered.configJson, { mode: 0o644 });
  if (rendered.unit !== undefined) await fs.writeFile(path.join(dir, paths.unitName(spec.name)), rendered.unit, { mode: 0o644 });
  if (rendered.tmpfiles !== undefined) await fs.writeFile(path.join(dir, 'tmpfiles.conf'), rendered.tmpfiles, { mode: 0o644 });
  const info: DeploymentInfo = {
    version: 2,
    name: spec.name,
    image: formatReference(spec.ref),
    manifestDigest: spec.image.manifestDigest,
    configDigest: spec.image.manifest.config.digest,
    runtimeName: spec.runtimeName,
    runtime: spec.runtime,
    ...(spec.runtimeFrom ? { runtimeFrom: spec.runtimeFrom } : {}),
    ...(rendered.native ? { runtimeNotes: rendered.native.notes } : {}),
    created: new Date().toISOString(),
    values: rendered.values,
    set: spec.set,
    ordering: spec.ordering,
    ...(spec.healthCmd ? { healthCmd: spec.healthCmd } : {}),
    ...(spec.ready ? { ready: spec.ready } : {}),
    ...(spec.autoUpdate ? { autoUpdate: true } : {}),
    hasUnit: rendered.unit !== undefined,
    hasTmpfiles: rendered.tmpfiles !== undefined,
    hostFiles: { files: [], dirs: [] },
    ...(spec.shared === undefined ? {} : { source: { kind: 'share' as const, share: spec.shared.share, rootfs: spec.shared.rootfs } }),
  };
  await writeInfo(dir, info);
  crashPoint('deploy.staged');
  return { dir, info, rendered };
}

/**
 * config.json for a rootfs on a shared store: root.path is the share's
 * checkout (absolute), read-only. runc cannot create mount points in a
 * read-only rootfs, so every mount destination not below an earlier mount
 * must exist there already; else the share cannot run this image here.
 */
async function rootOnShare(configJson: string, rootfs: string): Promise<string> {
  const spec = JSON.parse(configJson) as RuntimeSpec;
  spec.root = { path: rootfs, readonly: true };
  const needed: string[] = [];
  const seen: string[] = [];
  for (const m of spec.mounts ?? []) {
    const dest = path.posix.normalize(`/${m.destination}`);
    if (!seen.some((d) => d === '/' || dest.startsWith(`${d}/`))) needed.push(dest);
    seen.push(dest);
  }
  const missing = await missingInRootfs(rootfs, [...new Set(needed)]);
  if (missing.length > 0) {
    throw new BerthError('SHARE_UNAVAILABLE', `${rootfs} lacks the mount points ${missing.join(', ')} (runc cannot create them in a read-only rootfs)`, {
      hint: 'the image (or the publisher) must provide those directories or files; meanwhile install without shared-store= in berth.conf',
    });
  }
  return `${JSON.stringify(spec, null, 2)}\n`;
}

/** Move a staged deployment into `slot` (replacing whatever an older deployment left there). */
export async function commit(paths: Paths, staged: Staged, slot: 0 | 1, undo: Undo, journal: IntentLog): Promise<string> {
  const target = paths.slot(staged.info.name, slot);
  await journal.write({ phase: 'commit' });
  await fs.rm(target, { recursive: true, force: true });
  // The rename makes the slot count: first the checkout's hard links and directories and the
  // deployment's own files must be durable. One syncfs, not an fsync per entry (see docs/durability.md).
  await syncFilesystem(staged.dir);
  await fs.rename(staged.dir, target);
  await syncDir(paths.containers);
  staged.dir = target;
  undo.push(`slot ${target}`, () => fs.rm(target, { recursive: true, force: true }));
  crashPoint('deploy.committed');
  return target;
}

/**
 * Put a committed slot's system files in place: host files (recorded into its
 * info.json), tmpfiles (applied), the unit, and the NAME symlink. The caller
 * reloads systemd.
 */
export async function activate(ctx: OpContext, staged: Staged, slot: 0 | 1, undo: Undo, journal?: IntentLog): Promise<void> {
  const { paths } = ctx;
  const { name } = staged.info;
  if (staged.rendered.hostfs.length > 0) {
    // Ahead of the apply: a SIGKILL midway leaves files no undo stack remembers.
    if (journal) await journal.write({ hostFiles: await absentHostFiles(staged.rendered.hostfs) });
    const applied = await applyHostFiles(staged.rendered.hostfs);
    undo.push('host files', () => removeHostFiles(applied));
    crashPoint('deploy.hostfs-done');
    for (const kept of applied.kept) ctx.report.warn(`host file ${kept} already exists; kept it as it is`);
    staged.info.hostFiles = { files: applied.files, dirs: applied.dirs };
    await writeInfo(staged.dir, staged.info, true);
    crashPoint('deploy.info-written');
  }
  if (staged.rendered.tmpfiles !== undefined) {
    await installTmpfiles(paths.tmpfilesFile(name), staged.rendered.tmpfiles);
    undo.push('tmpfiles', () => removeTmpfiles(paths.tmpfilesFile(name)));
    crashPoint('deploy.tmpfiles-applied');
  }
  const previous = await readlinkIfLink(paths.current(name));
  await replaceSymlink(path.basename(paths.slot(name, slot)), paths.current(name));
  undo.push(`${paths.current(name)} symlink`, () =>
    previous === undefined ? fs.rm(paths.current(name), { force: true }) : replaceSymlink(previous, paths.current(name)),
  );
  crashPoint('deploy.symlink');
  if (staged.rendered.unit !== undefined) {
    // In /etc/systemd/system so it loads early at boot, even before /var is mounted.
    await writeFileAtomic(paths.unitFile(name), staged.rendered.unit);
    crashPoint('deploy.unit-written');
  }
}

/** Remove what activate() put on the host for a deployment described by `info` (not the slot itself). */
export async function deactivateFiles(ctx: OpContext, info: DeploymentInfo): Promise<{ keptHostFiles: string[] }> {
  const { paths } = ctx;
  await removeTmpfiles(paths.tmpfilesFile(info.name));
  const removed = await removeHostFiles(info.hostFiles);
  return { keptHostFiles: removed.kept };
}

export async function readSlotInfo(paths: Paths, name: string, slot: 0 | 1): Promise<DeploymentInfo | undefined> {
  // Deliberate: a slot without a readable info.json counts as empty, so uninstall and recovery get past a broken slot.
  return readInfo(paths.slot(name, slot)).catch(() => undefined);
}

export type { InstalledHostFiles };
