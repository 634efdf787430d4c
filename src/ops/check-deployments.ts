/**
 * The deployments half of `berth verify`: what ROOT/containers and the
 * system directories must look like between operations.
 *   - NAME is a symlink to NAME.0 or NAME.1, a committed slot whose info.json
 *     reads and names NAME;
 *   - an installed container with a unit has its unit file, identical to the
 *     slot's copy; one with tmpfiles has /etc/tmpfiles.d/NAME.conf;
 *   - every slot belongs to an installed container (no orphan slot), no
 *     staging directory or temp symlink is left, no intent is pending;
 *   - no unit file in the unit directory runs a container from berth's root
 *     unless that container is installed (no orphan unit).
 * Read-only: recovery (ops/recover.ts) is what puts things right.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { exists, ifExists, lstatIfExists, readdirIfExists } from '../fsutil.ts';
import { readInfo } from '../deploy/info.ts';
import { readIntents } from '../deploy/intent.ts';
import type { OpContext } from './context.ts';

export interface DeploymentCheck {
  ok: boolean;
  /** Installed containers checked. */
  containers: number;
  problems: string[];
}

export async function checkDeployments(ctx: OpContext): Promise<DeploymentCheck> {
  const { paths } = ctx;
  const problems: string[] = [];
  for (const intent of await readIntents(paths.root).catch((e: unknown) => {
    problems.push((e as Error).message);
    return [];
  })) {
    const what = intent.kind === 'images' ? `${intent.op} of ${intent.images.map((i) => i.reference).join(', ')}` : intent.kind === 'stack' ? `${intent.op} of ${intent.members.map((m) => m.name).join(', ')}` : `${intent.op} of ${intent.name}`;
    problems.push(`an interrupted ${what} (pid ${intent.pid}) is not recovered yet`);
  }

  const entries = (await readdirIfExists(paths.containers)).sort();
  const installed = new Set<string>();
  const slots: string[] = [];
  for (const entry of entries) {
    const full = path.join(paths.containers, entry);
    if (entry.startsWith('.staging-')) {
      problems.push(`staging directory ${full} is left over`);
      continue;
    }
    const st = await lstatIfExists(full);
    if (st === undefined) continue;
    if (st.isSymbolicLink()) {
      const target = await fs.readlink(full);
      if (target !== `${entry}.0` && target !== `${entry}.1`) {
        problems.push(`${full} points at ${target}, not at a slot of ${entry} (a half-switched or stray symlink)`);
        continue;
      }
      installed.add(entry);
      await checkInstalled(ctx, entry, path.join(paths.containers, target), problems);
    } else if (st.isDirectory() && /\.[01]$/.test(entry)) {
      slots.push(entry);
    } else {
      problems.push(`stray entry ${full}`);
    }
  }
  for (const slot of slots) {
    const full = path.join(paths.containers, slot);
    const name = slot.slice(0, -2);
    if (!installed.has(name)) problems.push(`slot ${full} belongs to no installed container (orphan slot)`);
    else {
      try {
        if ((await readInfo(full)) === undefined) problems.push(`slot ${full} has no info.json (a half-written slot)`);
      } catch (e) {
        problems.push((e as Error).message);
      }
    }
  }

  // A unit that runs its container from berth's root (DESTDIR, or a slot: the systemd backend's RootDirectory=) is berth's.
  for (const file of (await readdirIfExists(paths.unitDir)).sort()) {
    if (!file.endsWith('.service')) continue;
    const name = file.slice(0, -'.service'.length);
    if (installed.has(name)) continue;
    const text = (await ifExists(fs.readFile(path.join(paths.unitDir, file), 'utf8'))) ?? '';
    if (new RegExp(`${escape(path.join(paths.containers, name))}(?:\\.[01]/|(?![\\w.-]))`).test(text)) {
      problems.push(`unit ${path.join(paths.unitDir, file)} runs ${name} from ${paths.containers}, which is not installed (orphan unit)`);
    }
  }
  return { ok: problems.length === 0, containers: installed.size, problems };
}

async function checkInstalled(ctx: OpContext, name: string, slotDir: string, problems: string[]): Promise<void> {
  const { paths } = ctx;
  let info;
  try {
    info = await readInfo(slotDir);
  } catch (e) {
    problems.push((e as Error).message);
    return;
  }
  if (info === undefined) {
    problems.push(`${paths.current(name)} points at ${slotDir}, which holds no committed deployment`);
    return;
  }
  if (info.name !== name) problems.push(`${slotDir}/info.json is for ${info.name}, not ${name}`);
  if (info.hasUnit) {
    const live = await ifExists(fs.readFile(paths.unitFile(name), 'utf8'));
    const copy = await ifExists(fs.readFile(path.join(slotDir, paths.unitName(name)), 'utf8'));
    if (live === undefined) problems.push(`unit ${paths.unitFile(name)} of installed container ${name} is missing`);
    else if (copy !== undefined && live !== copy) problems.push(`unit ${paths.unitFile(name)} is not the one of ${name}'s live slot ${slotDir} (a half-switched slot)`);
  }
  if (info.hasTmpfiles && !(await exists(paths.tmpfilesFile(name)))) problems.push(`tmpfiles ${paths.tmpfilesFile(name)} of installed container ${name} is missing`);
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
