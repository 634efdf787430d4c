/** info.json: what a deployment holds, written once when it is created. */
import fs from 'node:fs/promises';
import path from 'node:path';
import { BerthError, errnoCode } from '../errors.ts';

export interface DeploymentInfo {
  version: 1;
  name: string;
  /** The reference as given, canonicalised (docker://..., oci:...). */
  image: string;
  manifestDigest: string;
  configDigest: string;
  runtime: string;
  created: string;
  /** Values the templates were rendered with (for updates to reuse). */
  values: Record<string, string>;
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
    if (info.version !== 1 || typeof info.name !== 'string') throw new Error('unknown version');
    return info;
  } catch (e) {
    throw new BerthError('IO_ERROR', `${deployment}/${INFO_FILE} is unreadable: ${(e as Error).message}`, {
      hint: 'the deployment is damaged; reinstall the container',
    });
  }
}

export async function writeInfo(deployment: string, info: DeploymentInfo): Promise<void> {
  await fs.writeFile(path.join(deployment, INFO_FILE), `${JSON.stringify(info, null, 2)}\n`, { mode: 0o644 });
}
