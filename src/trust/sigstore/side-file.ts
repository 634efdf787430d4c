/**
 * berth's companion to policy.json for what containers-policy.json(5) cannot
 * say yet, kept in a file of its own so that policy.json stays valid for
 * podman, skopeo and CRI-O (containers/image refuses unknown members):
 * `berth-sigstore.json` next to the policy. Keyed exactly like policy.json
 * ("default", then transports → scope), it applies to the sigstoreSigned
 * requirements of the scope the policy matched:
 *
 *   {"transports": {"docker": {"ghcr.io/org/app": {
 *     "subjectURIs": ["https://github.com/org/app/.github/workflows/release.yml@refs/tags/v1"],
 *     "trustedRoot": "/etc/containers/sigstore/trusted_root.json"}}}}
 *
 * subjectURIs: URI SANs a fulcio certificate may carry instead of
 * fulcio.subjectEmail (a CI workflow's identity); the OIDC issuer must still be
 * fulcio.oidcIssuer. trustedRoot: a pinned trusted_root.json for Sigstore
 * bundles (see bundle.ts). A missing file adds nothing.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { BerthError, errnoCode } from '../../errors.ts';
import { isJsonObject, parseStrictJson, unexpectedMembers, type JsonObject, type JsonValue } from '../../strict-json.ts';

export const SIDE_FILE_NAME = 'berth-sigstore.json';
const MAX_BYTES = 1024 * 1024;

export interface ScopeExtras {
  readonly subjectURIs: readonly string[];
  readonly trustedRoot: string | undefined;
}

export const NO_EXTRAS: ScopeExtras = { subjectURIs: [], trustedRoot: undefined };

export const sideFileFor = (policyPath: string): string => path.join(path.dirname(policyPath), SIDE_FILE_NAME);

class Invalid extends Error {}

function parseExtras(v: JsonValue | undefined, where: string): ScopeExtras {
  if (!isJsonObject(v)) throw new Invalid(`${where}: must be an object`);
  const bad = unexpectedMembers(v, [], ['subjectURIs', 'trustedRoot']);
  if (bad !== undefined) throw new Invalid(`${where}: ${bad}`);
  const uris = v['subjectURIs'] ?? [];
  if (!Array.isArray(uris) || uris.some((u) => typeof u !== 'string' || !/^[a-z][a-z0-9+.-]*:\S+$/i.test(u))) throw new Invalid(`${where}.subjectURIs: must be an array of URIs`);
  const root = v['trustedRoot'];
  if (root !== undefined && (typeof root !== 'string' || !path.isAbsolute(root))) throw new Invalid(`${where}.trustedRoot: must be an absolute path`);
  return { subjectURIs: uris as string[], trustedRoot: root as string | undefined };
}

/**
 * The extras for the scope the policy matched (`scope` undefined: the global
 * default). Throws BerthError POLICY_INVALID when the file exists but is unusable.
 */
export async function loadScopeExtras(policyPath: string, transport: string, scope: string | undefined): Promise<ScopeExtras> {
  const file = sideFileFor(policyPath);
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return NO_EXTRAS;
    throw new BerthError('POLICY_INVALID', `${file} cannot be read (${(e as Error).message}); rejecting the image`, { hint: 'fix the file or its permissions', cause: e });
  }
  try {
    if (bytes.length > MAX_BYTES) throw new Invalid(`larger than ${MAX_BYTES} bytes`);
    let doc: JsonValue;
    try {
      doc = parseStrictJson(bytes);
    } catch (e) {
      throw new Invalid(`JSON: ${(e as Error).message}`);
    }
    if (!isJsonObject(doc)) throw new Invalid('top level: must be an object');
    const bad = unexpectedMembers(doc, [], ['default', 'transports']);
    if (bad !== undefined) throw new Invalid(`top level: ${bad}`);
    const transports = doc['transports'] ?? {};
    if (!isJsonObject(transports)) throw new Invalid('transports: must be an object');
    // Validate everything, so a mistake elsewhere in the file is not silent.
    for (const [t, scopes] of Object.entries(transports)) {
      if (!isJsonObject(scopes)) throw new Invalid(`transports.${t}: must be an object of scopes`);
      for (const [s, v] of Object.entries(scopes)) parseExtras(v, `transports.${t}[${JSON.stringify(s)}]`);
    }
    if (doc['default'] !== undefined) parseExtras(doc['default'], 'default');
    if (scope === undefined) return doc['default'] === undefined ? NO_EXTRAS : parseExtras(doc['default'], 'default');
    const entry = (transports[transport] as JsonObject | undefined)?.[scope];
    return entry === undefined ? NO_EXTRAS : parseExtras(entry, `transports.${transport}[${JSON.stringify(scope)}]`);
  } catch (e) {
    if (!(e instanceof Invalid)) throw e;
    throw new BerthError('POLICY_INVALID', `${file} is invalid (${e.message}); rejecting the image`, { hint: 'fix the file (see the trust section of README.md)' });
  }
}
