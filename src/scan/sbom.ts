/**
 * The SBOM of a scan: CycloneDX 1.5 JSON (https://cyclonedx.org/docs/1.5/json/).
 * metadata.component is the image (a "container" component); the
 * components are the operating system (type "operating-system", from
 * os-release) and each package (type "library", with its purl, which is
 * also its bom-ref). serialNumber is a fresh urn:uuid each time.
 */
import { randomUUID } from 'node:crypto';
import type { OsRelease } from './inventory.ts';
import type { InstalledPackage } from './types.ts';

export interface SbomSubject {
  /** the image reference or name; default "rootfs" */
  name?: string;
  /** the manifest digest */
  digest?: string;
}

export function cycloneDx(packages: readonly InstalledPackage[], os: OsRelease | undefined, subject: SbomSubject, toolVersion: string): Record<string, unknown> {
  const components: Record<string, unknown>[] = [];
  if (os?.id !== undefined) {
    components.push({
      type: 'operating-system',
      'bom-ref': `os:${os.id}${os.versionId === undefined ? '' : `@${os.versionId}`}`,
      name: os.id,
      ...(os.versionId === undefined ? {} : { version: os.versionId }),
      ...(os.prettyName === undefined ? {} : { description: os.prettyName }),
    });
  }
  const seen = new Set<string>();
  for (const p of packages) {
    // Two databases could list the same purl; bom-refs must be unique.
    if (seen.has(p.purl)) continue;
    seen.add(p.purl);
    components.push({
      type: 'library',
      'bom-ref': p.purl,
      name: p.name,
      version: p.version,
      purl: p.purl,
      ...(p.source === undefined ? {} : { properties: [{ name: 'berth:source', value: p.sourceVersion === undefined ? p.source : `${p.source} ${p.sourceVersion}` }] }),
    });
  }
  return {
    bomFormat: 'CycloneDX',
    specVersion: '1.5',
    serialNumber: `urn:uuid:${randomUUID()}`,
    version: 1,
    metadata: {
      timestamp: new Date().toISOString(),
      tools: { components: [{ type: 'application', name: 'berth', version: toolVersion }] },
      component: {
        type: 'container',
        'bom-ref': subject.digest ?? subject.name ?? 'rootfs',
        name: subject.name ?? 'rootfs',
        ...(subject.digest === undefined ? {} : { version: subject.digest, hashes: digestHash(subject.digest) }),
      },
    },
    components,
  };
}

function digestHash(digest: string): { alg: string; content: string }[] {
  const m = /^sha256:([0-9a-f]{64})$/.exec(digest);
  return m ? [{ alg: 'SHA-256', content: m[1]! }] : [];
}
