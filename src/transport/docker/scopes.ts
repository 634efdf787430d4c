/**
 * Scopes of registry images, as containers-policy.json(5) and
 * containers-registries.d(5) define them (the docker transport's policy
 * scopes; registries.d's look-aside lookup uses the same).
 */
import type { DockerReference } from '../../image/reference.ts';

/**
 * The exact image (`HOST/REPO:TAG` or `HOST/REPO@DIGEST`; a reference with
 * both is looked up under each), the repository, each parent namespace, the
 * host[:port], then `*.DOMAIN` wildcards of the host name without port.
 * Most specific first.
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

/** undefined when `scope` is a valid docker policy scope, else why not. */
export function validateDockerScope(scope: string): string | undefined {
  if (/^[a-z][a-z0-9+.-]*:\/\//.test(scope) || scope.startsWith('docker:')) return 'a docker scope has no transport or URL prefix (write HOST[:PORT]/NAMESPACE…)';
  if (/[\s\0]/.test(scope)) return 'a docker scope has no whitespace';
  if (scope.includes('*') && !/^\*\.[^*/:@]+$/.test(scope)) return 'a wildcard scope must look like *.example.com';
  return undefined;
}
