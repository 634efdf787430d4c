/**
 * berth install --system: get the image (pulling it through the trust policy
 * unless the store has it), check it out into a new slot, render it, put its
 * unit, tmpfiles and host files in place, enable and start it. Either the
 * container ends up active (or enabled, with --no-start), or everything this
 * call created is undone and the error says why.
 */
import { crashPoint } from '../crashpoint.ts';
import { BerthError } from '../errors.ts';
import { formatReference, parseImageReference, repositoryBaseName } from '../transport/index.ts';
import type { ImageReference } from '../transport/reference.ts';
import { exists } from '../fsutil.ts';
import { Journal } from '../deploy/intent.ts';
import { checkName } from '../deploy/paths.ts';
import type { Ordering } from '../render/ordering.ts';
import type { Readiness } from '../runtime/readiness.ts';
import { chooseRuntime, findRuntime, RUNTIME_LABEL } from '../runtime/runtime.ts';
import { Store } from '../store/store.ts';
import type { SystemdManager } from '../systemd/manager.ts';
import { withSystemd } from '../systemd/session.ts';
import type { OpContext } from './context.ts';
import { locked } from './locked.ts';
import { activate, commit, stage, Undo, type Staged } from './deployment.ts';
import { obtainImage, type PullPolicy } from './obtain.ts';
import type { PullOptions } from './pull.ts';
import { requireRoot } from './require-root.ts';
import { removeUnit, startAndCheck } from './unit-steps.ts';

export interface InstallOptions {
  image: string;
  name?: string;
  set?: Record<string, string>;
  ordering?: Ordering;
  runtime?: string;
  pull: PullOptions;
  pullPolicy?: PullPolicy;
  /** Enable only; do not start. */
  noStart?: boolean;
  /** Render and print, change nothing. */
  dryRun?: boolean;
  healthCmd?: string[];
  /** A readiness probe (else the image's berth.ready.* labels decide). */
  ready?: Readiness | undefined;
  autoUpdate?: boolean;
  /** How long to wait for the start job. */
  startTimeoutMs?: number;
}

export interface InstallResult {
  name: string;
  image: string;
  manifestDigest: string;
  unit: string | undefined;
  activeState: string;
  /** With --dry-run: what would be written. */
  rendered?: { configJson: string; unit: string | undefined; tmpfiles: string | undefined; values: Record<string, string> };
}

/** atomic's default: the repository's last component, plus -TAG unless the tag is latest. */
export function defaultName(ref: ImageReference): string {
  const base = repositoryBaseName(ref);
  const tag = ref.transport === 'docker' || ref.transport === 'short-name' ? ref.tag : undefined;
  return tag && tag !== 'latest' ? `${base}-${tag}` : base;
}

export async function install(ctx: OpContext, options: InstallOptions): Promise<InstallResult> {
  if (!options.dryRun) requireRoot('install');
  const ref = parseImageReference(options.image);
  const name = checkName(options.name ?? defaultName(ref));
  return locked(ctx, `install ${name}`, () => installLocked(ctx, options, ref, name));
}

async function checkFree(ctx: OpContext, name: string): Promise<void> {
  const { paths } = ctx;
  // NAME.0 and NAME.1 are NAME's slots: a name that is another container's slot would collide.
  const slotOf = /^(.+)\.[01]$/.exec(name)?.[1];
  if (slotOf !== undefined && (await exists(paths.current(slotOf)))) {
    throw new BerthError('ALREADY_INSTALLED', `name ${name} is taken by a slot of installed container ${slotOf}`, { hint: 'choose another --name' });
  }
  if ((await exists(paths.current(name))) || (await exists(paths.slot(name, 0))) || (await exists(paths.slot(name, 1)))) {
    throw new BerthError('ALREADY_INSTALLED', `container ${name} is already installed`, {
      hint: `uninstall it first (berth uninstall ${name}), update it (berth update ${name}) or choose another --name`,
    });
  }
  if (await exists(paths.unitFile(name))) {
    throw new BerthError('ALREADY_INSTALLED', `unit ${paths.unitFile(name)} already exists and is not berth's`, {
      hint: 'choose another --name; berth never overwrites units it did not create',
    });
  }
}

export async function installLocked(ctx: OpContext, options: InstallOptions, ref: ImageReference, name: string): Promise<InstallResult> {
  const { paths, report } = ctx;
  await checkFree(ctx, name);
  // An explicit runtime is checked before anything is pulled; the image's label only once it is here.
  if (options.runtime !== undefined) await findRuntime(options.runtime);
  const store = await Store.open(paths.root);
  const { image, reference, shared } = await obtainImage(ctx, store, ref, options.pull, options.pullPolicy);
  const choice = chooseRuntime(options.runtime, image.config.config.Labels);
  const runtimeName = choice.name;
  const runtime = await findRuntime(runtimeName);
  if (choice.from === 'label') report.step(`Runtime ${runtimeName}, as the image's label ${RUNTIME_LABEL} asks`);

  const undo = new Undo();
  // Recovery from a kill undoes the whole install: the name was free (checkFree), so all of it is ours.
  const journal = new Journal(paths.root, { op: 'install', name, phase: 'stage', toSlot: 0, newSlot: true });
  if (!options.dryRun) {
    await journal.write();
    crashPoint('deploy.intent-written');
  }
  try {
    const staged = await stage(
      ctx,
      store,
      { name, ref: reference, image, shared, set: options.set ?? {}, ordering: options.ordering ?? {}, runtimeName, runtime, runtimeFrom: choice.from, ...(options.healthCmd ? { healthCmd: options.healthCmd } : {}), ...(options.ready ? { ready: options.ready } : {}), ...(options.autoUpdate ? { autoUpdate: true } : {}) },
      undo,
      0,
    );
    if (options.dryRun) {
      await undo.run(report);
      await journal.done();
      const { configJson, unit, tmpfiles, values } = staged.rendered;
      return { name, image: formatReference(reference), manifestDigest: image.manifestDigest, unit: unit === undefined ? undefined : paths.unitName(name), activeState: 'dry-run', rendered: { configJson, unit, tmpfiles, values } };
    }
    await commit(paths, staged, 0, undo, journal);
    // The undo steps need the bus: they run before withSystemd disconnects it.
    const result = await withSystemd(async (systemd) => {
      try {
        return await activateAndStart(ctx, systemd, staged, options, undo, journal);
      } catch (e) {
        await undo.run(report);
        throw e;
      }
    });
    await journal.done();
    return result;
  } catch (e) {
    await undo.run(report);
    await journal.done();
    throw e;
  }
}

async function activateAndStart(ctx: OpContext, systemd: SystemdManager, staged: Staged, options: InstallOptions, undo: Undo, journal: Journal): Promise<InstallResult> {
  const { paths, report } = ctx;
  const { name, image, manifestDigest } = staged.info;
  const unit = staged.info.hasUnit ? paths.unitName(name) : undefined;
  if (unit !== undefined) undo.push(`unit ${unit}`, () => removeUnit(systemd, paths.unitFile(name), unit));
  await journal.write({ phase: 'switch' });
  await activate(ctx, staged, 0, undo, journal);
  if (unit === undefined) {
    undo.clear();
    report.step(`${name}: no container service (manifest.json noContainerService); files installed`);
    return { name, image, manifestDigest, unit, activeState: 'none' };
  }
  await systemd.reload();
  crashPoint('install.reloaded');
  await systemd.enableUnitFiles([unit]);
  crashPoint('install.enabled');
  let activeState = 'inactive';
  if (!options.noStart) {
    report.step(`Starting ${unit}`);
    activeState = await startAndCheck(systemd, unit, options.startTimeoutMs ?? 120_000, 'the install was undone');
    report.step(activeState === 'active' ? `${unit} is active` : `${unit} is enabled, not started: a Condition*= of the unit is not met on this host`);
  }
  crashPoint('install.started');
  undo.clear();
  return { name, image, manifestDigest, unit, activeState };
}
