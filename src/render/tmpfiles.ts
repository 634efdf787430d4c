/**
 * The tmpfiles.d(5) file of a system container (/etc/tmpfiles.d/NAME.conf):
 * the image's tmpfiles.template rendered and checked line by line, or, when
 * the image has none, a `d` line per bind-mount source missing on the host
 * (as atomic did), so that the container can start.
 */
import { BerthError } from '../errors.ts';
import { substituteLines } from './template.ts';

/**
 * tmpfiles.d(5) line types (systemd 252+; F is the old spelling of f+).
 * `deep`: the type removes, cleans or recursively changes what it names, so
 * its path must be at least two levels deep (no "R /var", no "Z /etc").
 */
export const TMPFILES_TYPES: Readonly<Record<string, { deep: boolean }>> = {
  f: { deep: false }, F: { deep: false }, w: { deep: false }, d: { deep: false }, D: { deep: true }, e: { deep: true },
  v: { deep: false }, q: { deep: false }, Q: { deep: false }, p: { deep: false }, L: { deep: false }, c: { deep: false },
  b: { deep: false }, C: { deep: true }, x: { deep: false }, X: { deep: false }, r: { deep: true }, R: { deep: true },
  z: { deep: false }, Z: { deep: true }, t: { deep: false }, T: { deep: true }, h: { deep: false }, H: { deep: true },
  a: { deep: false }, A: { deep: true },
};

const typeRe = /^([A-Za-z])(\+?)([!\-=~^]*)$/;

function bad(file: string, line: number, why: string): BerthError {
  return new BerthError('USAGE', `${file}, line ${line}: ${why}`, { hint: 'fix the tmpfiles template (tmpfiles.d(5))' });
}

/** The type and (unquoted) path fields of a tmpfiles.d line. */
function leadingFields(line: string): { type: string; path: string } | undefined {
  const m = /^\s*(\S+)\s+("(?:[^"\\]|\\.)*"|\S+)/.exec(line);
  if (!m) return undefined;
  const raw = m[2]!;
  const path = raw.startsWith('"') ? raw.slice(1, -1).replace(/\\(.)/g, '$1') : raw;
  return { type: m[1]!, path };
}

/** Check one rendered tmpfiles.d file; returns it unchanged. */
export function checkTmpfiles(text: string, file: string): string {
  const lines = text.split('\n');
  lines.forEach((line, i) => {
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) return;
    const fields = leadingFields(line);
    if (!fields) throw bad(file, i + 1, 'expected at least a type and a path');
    const t = typeRe.exec(fields.type);
    const spec = t ? TMPFILES_TYPES[t[1]!] : undefined;
    if (!t || !spec) throw bad(file, i + 1, `unknown line type ${JSON.stringify(fields.type)}`);
    const p = fields.path;
    if (!p.startsWith('/')) throw bad(file, i + 1, `path ${JSON.stringify(p)} is not absolute`);
    const parts = p.split('/').filter((c) => c !== '' && c !== '.');
    if (parts.includes('..')) throw bad(file, i + 1, `path ${JSON.stringify(p)} contains ".."`);
    if (/[\x00-\x1f\x7f]/.test(p)) throw bad(file, i + 1, `path ${JSON.stringify(p)} contains a control character`);
    if (spec.deep && parts.length < 2) throw bad(file, i + 1, `"${fields.type}" on ${JSON.stringify(p)} would act on a whole top-level directory`);
  });
  return text;
}

/** Render and check the image's tmpfiles.template (atomic's safe_substitute for stray "$"). */
export function renderTmpfiles(template: string, values: Readonly<Record<string, string>>): string {
  const file = '/exports/tmpfiles.template';
  return checkTmpfiles(substituteLines(template, values, file, 'keep'), file);
}

/** A path as a tmpfiles.d field: quoted when needed, specifiers (%) escaped. */
export function tmpfilesPath(p: string): string {
  const escaped = p.replace(/%/g, '%%');
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(escaped) ? escaped : `"${escaped.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/**
 * `d` lines for bind-mount sources the container needs, or undefined when
 * there are none: `missing` ones are created private (0700); `volatile` ones
 * exist now but live under /run, so a reboot removes them: their line only
 * recreates them and never changes an existing directory's mode or owner
 * (it may be another program's, such as /run/systemd).
 */
export function tmpfilesForMissing(missing: readonly string[], volatile: readonly string[] = []): string | undefined {
  const create = [...new Set(missing)];
  const recreate = [...new Set(volatile)].filter((p) => !create.includes(p));
  if (create.length === 0 && recreate.length === 0) return undefined;
  const lines = [...create.map((p) => `d ${tmpfilesPath(p)} 0700 root root -`), ...recreate.map((p) => `d ${tmpfilesPath(p)} - - - -`)];
  return checkTmpfiles(`# Bind-mount sources the container needs that nothing else creates, added by berth.\n${lines.join('\n')}\n`, 'generated tmpfiles');
}

/** Line types that create what they name (files, directories, links, nodes). */
const CREATING_TYPES = new Set(['f', 'F', 'w', 'd', 'D', 'v', 'q', 'Q', 'p', 'L', 'c', 'b', 'C']);

/** The paths a (checked) tmpfiles.d text creates, without trailing slashes. */
export function pathsCreatedBy(text: string): Set<string> {
  const out = new Set<string>();
  for (const line of text.split('\n')) {
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    const fields = leadingFields(line);
    const type = fields ? typeRe.exec(fields.type)?.[1] : undefined;
    if (fields && type !== undefined && CREATING_TYPES.has(type)) out.add(fields.path.replace(/\/+$/, '') || '/');
  }
  return out;
}
