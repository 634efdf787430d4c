/** What the transports that read a local path (oci:, oci-archive:, docker-archive:) share: PATH[:REF] and path scopes. */
import fs from 'node:fs';
import path from 'node:path';
import { invalidReference } from '../image/reference.ts';

/** PATH[:REF]; PATH may not contain ':' (as in containers/image). */
export function splitPathRef(s: string, input: string, what: string): [string, string | undefined] {
  const colon = s.indexOf(':');
  const file = colon >= 0 ? s.slice(0, colon) : s;
  const ref = colon >= 0 ? s.slice(colon + 1) : undefined;
  if (file.length === 0) throw invalidReference(input, `missing the ${what}`);
  return [path.resolve(file), ref];
}

/** `p` with its symlinks resolved when it exists, so a policy scope cannot be sidestepped through a link. */
export function resolvedPath(p: string): string {
  try {
    return fs.realpathSync(p);
  } catch {
    return p; // not there (yet): reading from it will fail anyway
  }
}

/** `p` and each parent directory, except "/" (the transport default "" covers it). */
export function withParents(p: string): string[] {
  const out: string[] = [];
  for (let d = p; d !== path.dirname(d); d = path.dirname(d)) out.push(d);
  return out;
}

/** oci: and oci-archive: scopes: a clean absolute path (a layout scope may add :REF). */
export function validatePathScope(transport: string, scope: string): string | undefined {
  if (!path.isAbsolute(scope)) return `an ${transport} scope must be an absolute path`;
  const dir = scope.includes(':') ? scope.slice(0, scope.indexOf(':')) : scope;
  if (dir === '/') return 'the scope "/" is not allowed; use "" for the transport default';
  if (path.normalize(dir) !== dir || dir.endsWith('/')) return 'an oci scope must be a clean path (no //, /./, /../ or trailing /)';
  return undefined;
}

/** The file name without a .tar/.oci/.docker suffix: the default container name of an archive. */
export function fileBaseName(f: string): string {
  return path.basename(f).replace(/\.(tar|oci|docker)$/i, '');
}

/**
 * A layout's ref.name may be a plain tag ("web") or a whole reference
 * ("registry:5000/system/etcd:3.4", as berth save writes): named by its repository.
 */
export function layoutRefBaseName(r: string): string {
  const s = r.replace(/@.*$/, '').replace(/:[^:/]*$/, '');
  return s.slice(s.lastIndexOf('/') + 1);
}
