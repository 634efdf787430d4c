/**
 * berth install --system: pull, check out, render, and start under systemd.
 * Either the container ends up active, or everything this call created is
 * undone (in reverse order) and the error says why.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { BerthError } from '../errors.ts';
import { shortDigest } from '../image/digest.ts';
import { formatReference, parseImageReference, repositoryBaseName, type ImageReference } from '../image/reference.ts';
import { resolveImage } from '../image/resolve.ts';
import { exists, replaceSymlink, syncDir, writeFileAtomic } from '../deploy/fsutil.ts';
import { writeInfo, type DeploymentInfo } from '../deploy/info.ts';
import { checkName } from '../deploy/paths.ts';
import { renderDefaultConfig } from '../render/oci-config.ts';
import { renderDefaultUnit } from '../render/service.ts';
import { execLine } from '../render/unit-file.ts';
import { findRuntime, runtimeCommands } from '../runtime/runtime.ts';
import { unpackImage } from '../store/unpack.ts';
import { journalTail } from '../systemd/journal.ts';
import { withSystemd } from '../systemd/session.ts';
import { openImageSource } from '../transport/index.ts';
import { locked, type OpContext } from './context.ts';
import { requireRoot } from './require-root.ts';
import { removeUnit } from './unit-steps.ts';

export interface InstallOptions {
  image: string;
  name?: string;
  tlsVerify: boolean;
  runtime?: string;
  /** How long to wait for the start job. */
  startTimeoutMs?: number;
}

export interface InstallResult {
  name: string;
  image: string;
  manifestDigest: string;
  unit: string;
  activeState: string;
}

/** atomic's default: the repository's last component, plus -TAG unless the tag is latest. */
export function defaultName(ref: ImageReference): string {
  const base = repositoryBaseName(ref);
  const tag = ref.transport === 'docker' ? ref.tag : undefined;
  return tag && tag !== 'latest' ? `${base}-${tag}` : base;
}

export async function install(ctx: OpContext, options: InstallOptions): Promise<InstallResult> {
  requireRoot('install');
  const ref = parseImageReference(options.image);
  const name = checkName(options.name ?? defaultName(ref));
  return locked(ctx, `install ${name}`, () => installLocked(ctx, options, ref, name));
}

async function installLocked(ctx: OpContext, options: InstallOptions, ref: ImageReference, name: string): Promise<InstallResult> {
  const { paths, report } = ctx;
  const unit = paths.unitName(name);

  // NAME.0 and NAME.1 are NAME's slots: a name that is another container's slot would collide.
  const slotOf = /^(.+)\.[01]$/.exec(name)?.[1];
  if (slotOf !== undefined && (await exists(paths.current(slotOf)))) {
    throw new BerthError('ALREADY_INSTALLED', `name ${name} is taken by a slot of installed container ${slotOf}`, { hint: 'choose another --name' });
  }
  if ((await exists(paths.current(name))) || (await exists(paths.slot(name, 0))) || (await exists(paths.slot(name, 1)))) {
    throw new BerthError('ALREADY_INSTALLED', `container ${name} is already installed`, {
      hint: `uninstall it first (berth uninstall ${name}) or choose another --name`,
    });
  }
  if (await exists(paths.unitFile(name))) {
    throw new BerthError('ALREADY_INSTALLED', `unit ${paths.unitFile(name)} already exists and is not berth's`, {
      hint: 'choose another --name; berth never overwrites units it did not create',
    });
  }
  const runtime = await findRuntime(options.runtime);

  return withSystemd(async (systemd) => {
    const undo: (() => Promise<void>)[] = [];
    try {
      await fs.mkdir(paths.containers, { recursive: true, mode: 0o700 });
      const staging = paths.staging(name);
      undo.push(() => fs.rm(staging, { recursive: true, force: true }));
      await fs.mkdir(path.join(staging, 'rootfs'), { recursive: true, mode: 0o755 });

      const source = await openImageSource(ref, { tlsVerify: options.tlsVerify });
      let image;
      try {
        report.step(`Resolving ${source.description}`);
        image = await resolveImage(source);
        report.step(`Pulling ${shortDigest(image.manifestDigest)}: ${image.manifest.layers.length} layer(s)`);
        await unpackImage(source, image, path.join(staging, 'rootfs'), (p) =>
          report.step(`  layer ${p.layer}/${p.layers} ${shortDigest(p.digest)} (${formatBytes(p.size)})`),
        );
      } finally {
        await source.close();
      }

      const slot = paths.slot(name, 0);
      const current = paths.current(name);
      const pidFile = `/run/berth/${name}/pid`;
      const commands = runtimeCommands(runtime, name, current, pidFile);
      const values: Record<string, string> = {
        NAME: name,
        DESTDIR: current,
        IMAGE_NAME: formatReference(ref),
        IMAGE_ID: image.manifestDigest,
        PIDFILE: pidFile,
        RUNTIME: runtime,
        EXEC_START: execLine(commands.run),
        EXEC_STARTPRE: execLine(commands.delete),
        EXEC_STOPPOST: execLine(commands.delete),
      };
      const config = await renderDefaultConfig({ name, image: image.config });
      const unitText = (await renderDefaultUnit(values)).toString();
      await fs.writeFile(path.join(staging, 'config.json'), `${JSON.stringify(config, null, 2)}\n`, { mode: 0o644 });
      await fs.writeFile(path.join(staging, unit), unitText, { mode: 0o644 });
      const info: DeploymentInfo = {
        version: 1,
        name,
        image: formatReference(ref),
        manifestDigest: image.manifestDigest,
        configDigest: image.manifest.config.digest,
        runtime,
        created: new Date().toISOString(),
        values,
      };
      await writeInfo(staging, info);
      await syncDir(staging);

      // Commit the deployment: rename the staging dir into its slot, then point NAME at it.
      await fs.rename(staging, slot);
      undo.push(() => fs.rm(slot, { recursive: true, force: true }));
      await replaceSymlink(path.basename(slot), current);
      undo.push(() => fs.rm(current, { force: true }));

      // The unit goes to /etc/systemd/system so it loads early at boot, even before /var.
      await writeFileAtomic(paths.unitFile(name), unitText);
      undo.push(() => removeUnit(systemd, paths.unitFile(name), unit));
      await systemd.reload();
      await systemd.enableUnitFiles([unit]);
      report.step(`Starting ${unit}`);
      const result = await systemd.startUnit(unit, options.startTimeoutMs ?? 120_000);
      const state = await systemd.unitState(unit);
      if (result !== 'done' || state.activeState !== 'active') {
        throw await startFailure(unit, result, state.activeState);
      }
      report.step(`${unit} is active`);
      return { name, image: info.image, manifestDigest: info.manifestDigest, unit, activeState: state.activeState };
    } catch (e) {
      for (const step of undo.reverse()) {
        await step().catch((cleanupError: unknown) => ctx.report.warn(`cleanup: ${(cleanupError as Error).message}`));
      }
      throw e;
    }
  });
}

async function startFailure(unit: string, result: string, activeState: string): Promise<BerthError> {
  const journal = await journalTail(unit);
  return new BerthError('START_FAILED', `${unit} failed to start (job ${result}, state ${activeState}); the install was undone`, {
    hint: 'the journal lines below say why; fix the image or its command and install again',
    details: journal,
  });
}

function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}
