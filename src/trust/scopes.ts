/**
 * Policy scopes an image falls under, most specific first, as
 * containers-policy.json(5) and containers-registries.d(5) define them.
 * The first scope present in a configuration wins; more general ones are ignored.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { DockerReference, ImageReference } from '../image/reference.ts';

/**
 * docker: the exact image (`HOST/REPO:TAG` or `HOST/REPO@DIGEST`; a reference
 * with both is looked up under each), the repository, each parent namespace,
 * the host[:port], then `*.DOMAIN` wildcards of the host name without port.
 */
export function dockerScopes(ref: DockerReference): string[] {
  const name = `${ref.registry}/${ref.repository}`;
  const scopes: string[] = [];
  if (ref.tag !== undefined) scopes.push(`${name}:${ref.tag}`);
  if (ref.digest !== undefined) scopes.push(`${name}@${ref.digest}`);
  for (let n = name; ; ) {
    scopes.push(n);
    const slash = n.lastIndexOf('/');
    if (slash < 0) break;
    n = n.slice(0, slash);
  }
  let host = ref.registry.startsWith('[') ? '' : ref.registry.replace(/:[0-9]+$/, '');
  for (let dot = host.indexOf('.'); dot >= 0; dot = host.indexOf('.')) {
    host = host.slice(dot + 1);
    scopes.push(`*.${host}`);
  }
  return scopes;
}

/** `p` with its symlinks resolved when it exists, so a policy scope cannot be sidestepped through a link. */
function resolved(p: string): string {
  try {
    return fs.realpathSync(p);
  } catch {
    return p; // not there (yet): reading from it will fail anyway
  }
}

/** `p` and each parent directory, except "/" (the transport default "" covers it). */
function withParents(p: string): string[] {
  const out: string[] = [];
  for (let d = p; d !== path.dirname(d); d = path.dirname(d)) out.push(d);
  return out;
}

export interface PolicyScopes {
  /** The policy.json transport name. */
  readonly transport: string;
  /** Most specific first; the transport default "" is not included. */
  readonly scopes: readonly string[];
}

/**
 * The scopes of any reference, as containers/image names them:
 * oci: `DIR:REF` (REF empty when the reference names none), DIR, its parents;
 * oci-archive: the FILE and its parents; docker-archive: none (only "").
 * A short name has none: it must be resolved to a registry before the trust check.
 */
export function scopesFor(ref: ImageReference): PolicyScopes {
  switch (ref.transport) {
    case 'docker':
      return { transport: 'docker', scopes: dockerScopes(ref) };
    case 'oci': {
      const dir = resolved(ref.dir);
      return { transport: 'oci', scopes: [`${dir}:${ref.ref ?? ''}`, ...withParents(dir)] };
    }
    case 'oci-archive':
      return { transport: 'oci-archive', scopes: withParents(resolved(ref.file)) };
    case 'docker-archive':
      return { transport: 'docker-archive', scopes: [] };
    case 'short-name':
      throw new Error(`short name ${ref.name} must be resolved to a registry before its trust is checked`);
  }
}
