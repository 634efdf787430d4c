/**
 * info.json: what a deployment (one slot) holds, written once when the slot
 * is staged and never changed after. Update and rollback read it to know what
 * to re-render with and what to restore.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { BerthError, errnoCode } from '../errors.ts';
import { writeFileAtomic } from '../fsutil.ts';
import type { InstalledHostFiles } from './hostfs.ts';
import type { Ordering } from '../render/ordering.ts';
import type { Readiness } from '../runtime/readiness.ts';

export interface DeploymentInfo {
  version: 2;
  name: string;
  /** The reference as given, canonicalised (docker://..., oci:...). */
  image: string;
  manifestDigest: string;
  configDigest: string;
  /** The runtime as requested (runc, crun or a path) and as resolved. */
  runtimeName: string;
  runtime: string;
  /** Who chose it: an option (--runtime, a plan's runtime:), the image's label berth.runtime, or the default. */
  runtimeFrom?: 'option' | 'label' | 'default';
  /** With the systemd backend: what differs from an OCI runtime on purpose (the pid namespace...). */
  runtimeNotes?: string[];
  created: string;
  /** Every value the templates were rendered with. */
  values: Record<string, string>;
  /** The --set values given by the user (recorded, reused by updates). */
  set: Record<string, string>;
  ordering: Ordering;
  /** A command run inside the container to prove an update healthy. */
  healthCmd?: string[];
  /** The readiness probe the user asked for (--ready-*, a plan's ready:); kept by updates. */
  ready?: Readiness;
  /** Opted in to `berth update --all --auto` (the auto-update timer). */
  autoUpdate?: boolean;
  /** false when the image's manifest.json says noContainerService. */
  hasUnit: boolean;
  hasTmpfiles: boolean;
  /** Host files this deployment installed (from /exports/hostfs). */
  hostFiles: InstalledHostFiles;
  /**
   * Where the rootfs comes from when it is not the slot's own checkout: a
   * shared store (berth.conf shared-store=), mounted read-only; config.json's
   * root.path names `rootfs` there. Absent: the slot's rootfs/ (from the local store).
   */
  source?: { kind: 'share'; share: string; rootfs: string };
}

/** The rootfs a deployment runs from: its shared store's checkout, or its own rootfs/. */
export function deploymentRootfs(deployment: string, info: Pick<DeploymentInfo, 'source'>): string {
  return info.source?.kind === 'share' ? info.source.rootfs : path.join(deployment, 'rootfs');
}

export const INFO_FILE = 'info.json';

export async function readInfo(deployment: string): Promise<DeploymentInfo | undefined> {
  let text: string;
  try {
    text = await fs.readFile(path.join(deployment, INFO_FILE), 'utf8');
  } catch (e) {
    if (errnoCode(e) === 'ENOENT' || errnoCode(e) === 'ENOTDIR') return undefined;
    throw e;
  }
  try {
    const info = JSON.parse(text) as DeploymentInfo;
    if (info.version !== 2 || typeof info.name !== 'string') throw new Error(`unknown version ${String(info.version)}`);
    return info;
  } catch (e) {
    throw new BerthError('IO_ERROR', `${deployment}/${INFO_FILE} is unreadable: ${(e as Error).message}`, {
      hint: 'the deployment is damaged; reinstall the container',
    });
  }
}

/**
 * Write a deployment's info.json. In staging a plain write is enough (commit
 * fsyncs the directory before the rename that makes it count); in a committed
 * slot it is replaced atomically and durably (`durable`).
 */
export async function writeInfo(deployment: string, info: DeploymentInfo, durable = false): Promise<void> {
  const text = `${JSON.stringify(info, null, 2)}\n`;
  if (durable) await writeFileAtomic(path.join(deployment, INFO_FILE), text);
  else await fs.writeFile(path.join(deployment, INFO_FILE), text, { mode: 0o644 });
}
