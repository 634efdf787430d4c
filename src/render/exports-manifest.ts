/**
 * /exports/manifest.json of an atomic system image. Every field is
 * type-checked (a wrong type is an error: the image would not do what its
 * author meant); unknown keys are reported as warnings and otherwise ignored.
 */
import { BerthError } from '../errors.ts';
import { parseStrictJson } from '../strict-json.ts';

export interface ExportsManifest {
  /** atomic wrote "1.0"; berth reads any string. */
  version?: string;
  /** Image defaults for template variables (--set overrides them). */
  defaultValues: Record<string, string>;
  /** hostfs files (host paths, e.g. "/etc/foo.conf") whose content is a template. */
  installedFilesTemplate: string[];
  /** Host path of a hostfs file or directory -> its destination (a template). */
  renameFiles: Record<string, string>;
  /** The image only installs files on the host: no unit is created. */
  noContainerService: boolean;
  /** atomic hard-linked hostfs files under /usr from the checkout; berth always copies (see hostfs.ts). */
  useLinks: boolean;
}

export interface ParsedManifest {
  manifest: ExportsManifest;
  warnings: string[];
}

const KNOWN_KEYS = ['version', 'defaultValues', 'installedFilesTemplate', 'renameFiles', 'noContainerService', 'useLinks'];

function invalid(why: string): BerthError {
  return new BerthError('MANIFEST_INVALID', `/exports/manifest.json is invalid: ${why}`, {
    hint: 'the image was not built for atomic-style system containers, or its manifest.json is broken',
  });
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function stringMap(v: unknown, key: string): Record<string, string> {
  if (v === undefined) return {};
  if (!isObject(v)) throw invalid(`"${key}" must be an object`);
  const out: Record<string, string> = {};
  for (const [k, value] of Object.entries(v)) {
    if (typeof value !== 'string') throw invalid(`"${key}.${k}" must be a string, not ${value === null ? 'null' : typeof value}`);
    // defineProperty: a "__proto__" key stays an ordinary key.
    Object.defineProperty(out, k, { value, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

function bool(v: unknown, key: string, fallback: boolean): boolean {
  if (v === undefined) return fallback;
  if (typeof v !== 'boolean') throw invalid(`"${key}" must be true or false`);
  return v;
}

export function parseExportsManifest(text: string): ParsedManifest {
  let o: unknown;
  try {
    parseStrictJson(text); // a key given twice (two renameFiles for one path) is ambiguous: refused
    o = JSON.parse(text);
  } catch (e) {
    throw invalid(`not JSON (${(e as Error).message})`);
  }
  if (!isObject(o)) throw invalid('not a JSON object');
  const warnings = Object.keys(o)
    .filter((k) => !KNOWN_KEYS.includes(k))
    .map((k) => `/exports/manifest.json: unknown key ${JSON.stringify(k)} ignored`);
  const version = o['version'];
  if (version !== undefined && typeof version !== 'string') throw invalid('"version" must be a string');
  const files = o['installedFilesTemplate'];
  if (files !== undefined && (!Array.isArray(files) || files.some((f) => typeof f !== 'string'))) {
    throw invalid('"installedFilesTemplate" must be a list of strings');
  }
  const manifest: ExportsManifest = {
    defaultValues: stringMap(o['defaultValues'], 'defaultValues'),
    installedFilesTemplate: (files as string[] | undefined) ?? [],
    renameFiles: stringMap(o['renameFiles'], 'renameFiles'),
    noContainerService: bool(o['noContainerService'], 'noContainerService', false),
    useLinks: bool(o['useLinks'], 'useLinks', true),
  };
  if (version !== undefined) manifest.version = version;
  return { manifest, warnings };
}
