/**
 * Private CAs and client certificates for a registry, as
 * containers-certs.d(5) lays them out: a directory named after the
 * registry's HOST[:PORT] under /etc/containers/certs.d (and, as
 * containers/image also reads it, /etc/docker/certs.d) holding
 *   *.crt            CA certificates, trusted for this registry in addition
 *                    to the system's;
 *   *.cert + *.key   a client certificate and its key (same base name),
 *                    presented when the registry asks for one.
 * `--cert-dir DIR` names one such directory instead (skopeo's and podman's
 * meaning). The files are the administrator's, but still read bounded.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { BerthError, errnoCode } from '../../errors.ts';

export const CERTS_D_DIRS = ['/etc/containers/certs.d', '/etc/docker/certs.d'];
const MAX_FILE_BYTES = 1024 * 1024;
const MAX_FILES = 100;

/** What an https agent needs; `from` names the directories it came from (for messages). */
export interface RegistryTls {
  /** Extra CA certificates (PEM), on top of the system's. */
  ca: string[];
  cert?: string;
  key?: string;
  from: string[];
}

function invalid(file: string, why: string): BerthError {
  return new BerthError('CONFIG_INVALID', `${file}: ${why}`, { hint: 'see containers-certs.d(5): *.crt CA certificates, *.cert with a matching *.key' });
}

async function readBounded(file: string): Promise<string> {
  const st = await fs.stat(file);
  if (!st.isFile()) throw invalid(file, 'not a regular file');
  if (st.size > MAX_FILE_BYTES) throw invalid(file, `larger than ${MAX_FILE_BYTES} bytes`);
  const text = await fs.readFile(file, 'utf8');
  if (!text.includes('-----BEGIN ')) throw invalid(file, 'not PEM');
  return text;
}

async function readDir(dir: string, into: RegistryTls): Promise<boolean> {
  let names: string[];
  try {
    names = (await fs.readdir(dir)).sort();
  } catch (e) {
    if (errnoCode(e) === 'ENOENT' || errnoCode(e) === 'ENOTDIR') return false;
    throw e;
  }
  if (names.length > MAX_FILES) throw invalid(dir, `more than ${MAX_FILES} entries`);
  for (const name of names) {
    const file = path.join(dir, name);
    if (name.endsWith('.crt')) into.ca.push(await readBounded(file));
    else if (name.endsWith('.cert')) {
      const keyName = `${name.slice(0, -'.cert'.length)}.key`;
      if (!names.includes(keyName)) throw invalid(file, `client certificate without its key ${keyName}`);
      if (into.cert !== undefined) throw invalid(file, 'a second client certificate; berth presents one');
      into.cert = await readBounded(file);
      into.key = await readBounded(path.join(dir, keyName));
    } else if (name.endsWith('.key')) {
      if (!names.includes(`${name.slice(0, -'.key'.length)}.cert`)) throw invalid(file, `key without its client certificate ${name.slice(0, -'.key'.length)}.cert`);
    }
  }
  into.from.push(dir);
  return true;
}

/**
 * The TLS material for `host` (HOST[:PORT] as the registry API is reached):
 * from `certDir` alone when given, else from HOST[:PORT] under each of
 * `roots`. Undefined when there is none.
 */
export async function loadRegistryTls(host: string, certDir?: string, roots: readonly string[] = CERTS_D_DIRS): Promise<RegistryTls | undefined> {
  // The directory name comes from a reference: no path tricks.
  if (host === '' || host.includes('/') || host.startsWith('.')) return undefined;
  const tls: RegistryTls = { ca: [], from: [] };
  if (certDir !== undefined) {
    if (!(await readDir(certDir, tls))) throw new BerthError('CONFIG_INVALID', `--cert-dir ${certDir}: no such directory`, { hint: 'give a directory holding *.crt, *.cert and *.key files' });
  } else {
    for (const root of roots) await readDir(path.join(root, host), tls);
  }
  return tls.from.length === 0 ? undefined : tls;
}
