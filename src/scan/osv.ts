/**
 * An offline advisory database in OSV format (https://ossf.github.io/osv-schema/):
 * a directory of JSON files, one advisory each (an ecosystem's all.zip
 * unpacked; subdirectories are read too), kept current by the operator.
 *
 * Loading is strict and fails closed: every *.json file must be a strict
 * JSON advisory of bounded size whose members berth uses have the right
 * types; one that is not fails the scan naming the file (SCAN_FAILED),
 * since a database that silently lost advisories would approve what it
 * should block. Members berth does not use are not checked (the schema grows).
 *
 * Matching: an advisory's affected[].package.ecosystem matches an installed
 * package's ecosystem when equal, when it names no release ("Debian" matches
 * "Debian:12"), or when it adds a suffix ("Ubuntu:22.04:LTS" matches
 * "Ubuntu:22.04"). The name matched is the source package (Debian's and
 * Alpine's OSV entries are by source package), and for Debian the source
 * version. A package is affected when its version is listed in versions[],
 * or lies in an ECOSYSTEM range: at or after an `introduced`, before the
 * next `fixed` (or at or before a `last_affected`). SEMVER and GIT ranges
 * do not apply to OS packages and are ignored. Withdrawn advisories are skipped.
 *
 * Severity (the highest of what the advisory says wins, so that no source
 * can lower another): affected[].ecosystem_specific.severity or .urgency
 * (Debian's urgency), affected[].database_specific.severity,
 * database_specific.severity (GHSA-style), and of each severity[] entry
 * (top level and per affected entry) the CVSS v3 base rating (type
 * CVSS_V3) or the word (type Ubuntu); other types (CVSS_V4, CVSS_V2) are
 * not scored. An advisory that gives none is "unknown".
 */
import type { Dirent } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { BerthError } from '../errors.ts';
import { FileRefusedError, readRegularFileSync } from '../fsutil.ts';
import { isJsonObject, JsonSyntaxError, parseStrictJson, type JsonObject, type JsonValue } from '../strict-json.ts';
import { cvss3BaseScore, ratingOf } from './cvss.ts';
import type { Finding, InstalledPackage, Severity } from './types.ts';
import { baseEcosystem, versionCompareFor } from './version.ts';

export interface OsvLimits {
  fileBytes: number;
  files: number;
  totalBytes: number;
  depth: number;
}

export const DEFAULT_OSV_LIMITS: OsvLimits = { fileBytes: 4 * 1024 * 1024, files: 1_000_000, totalBytes: 4 * 1024 * 1024 * 1024, depth: 4 };

type OsvEvent = { introduced: string } | { fixed: string } | { last_affected: string } | { limit: string };

interface OsvAffected {
  ecosystem: string;
  name: string;
  ranges: { type: string; events: OsvEvent[] }[];
  versions: string[];
  severities: Severity[];
}

export interface OsvAdvisory {
  id: string;
  aliases: string[];
  summary?: string;
  affected: OsvAffected[];
  /** from database_specific and CVSS_V3 vectors; per-affected severities are added when matching */
  severities: Severity[];
  /** the file it came from, for messages */
  file: string;
}

export interface OsvDatabase {
  /** by base ecosystem ("Debian") and package name */
  index: Map<string, OsvAdvisory[]>;
  advisories: number;
  files: number;
}

const SEVERITY_WORDS: Record<string, Severity> = {
  critical: 'critical',
  high: 'high',
  important: 'high',
  moderate: 'medium',
  medium: 'medium',
  low: 'low',
  negligible: 'low',
  unimportant: 'low',
  minor: 'low',
  unknown: 'unknown',
  'not yet assigned': 'unknown',
  'end-of-life': 'unknown',
  unassigned: 'unknown',
  none: 'unknown',
  untriaged: 'unknown',
};

const RANK: Record<Severity, number> = { unknown: 0, low: 1, medium: 2, high: 3, critical: 4 };

export function severityRank(s: Severity): number {
  return RANK[s];
}

export function maxSeverity(list: readonly Severity[]): Severity {
  let best: Severity = 'unknown';
  for (const s of list) if (RANK[s] > RANK[best]) best = s;
  return best;
}

class Invalid extends Error {}

function str(v: JsonValue | undefined, what: string, max = 4096): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > max) throw new Invalid(`${what} must be a non-empty string`);
  return v;
}

function optStr(v: JsonValue | undefined, what: string, max = 4096): string | undefined {
  return v === undefined ? undefined : str(v, what, max);
}

function arr(v: JsonValue | undefined, what: string): JsonValue[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw new Invalid(`${what} must be an array`);
  return v;
}

function obj(v: JsonValue | undefined, what: string): JsonObject | undefined {
  if (v === undefined) return undefined;
  if (!isJsonObject(v)) throw new Invalid(`${what} must be an object`);
  return v;
}

/** A severity word from a database_specific/ecosystem_specific member; words berth does not know are refused. */
function severityWord(v: JsonValue | undefined, what: string): Severity | undefined {
  if (v === undefined || v === null) return undefined;
  // Debian's tracker marks a guessed urgency with "**" ("low**").
  const word = str(v, what, 64).trim().toLowerCase().replace(/\*+$/, '');
  const s = SEVERITY_WORDS[word];
  if (s === undefined) throw new Invalid(`${what} ${JSON.stringify(word)} is not a known severity`);
  return s;
}

function specificSeverities(o: JsonObject | undefined, what: string): Severity[] {
  if (o === undefined) return [];
  const out: Severity[] = [];
  for (const key of ['severity', 'urgency']) {
    const s = severityWord(o[key], `${what}.${key}`);
    if (s !== undefined) out.push(s);
  }
  return out;
}

/** A severity[] list (top level, or per affected entry since OSV 1.5): CVSS_V3 vectors scored, Ubuntu's words read, other types not scored. */
function scoredSeverities(v: JsonValue | undefined, what: string): Severity[] {
  const out: Severity[] = [];
  for (const [i, s] of arr(v, what).entries()) {
    const o = obj(s, `${what}[${i}]`)!;
    const type = str(o['type'], `${what}[${i}].type`, 64);
    const score = str(o['score'], `${what}[${i}].score`, 300);
    if (type === 'CVSS_V3') {
      const base = cvss3BaseScore(score);
      if (base === undefined) throw new Invalid(`${what}[${i}].score is not a CVSS v3 vector`);
      out.push(ratingOf(base));
    } else if (type === 'Ubuntu') {
      out.push(severityWord(score, `${what}[${i}].score`)!);
    }
  }
  return out;
}

/** One advisory document; undefined when withdrawn. Throws Invalid saying what is wrong. */
export function parseAdvisory(doc: JsonValue, file: string): OsvAdvisory | undefined {
  if (!isJsonObject(doc)) throw new Invalid('not a JSON object');
  const id = str(doc['id'], 'id', 200);
  if (!/^[A-Za-z0-9][A-Za-z0-9._:+-]*$/.test(id)) throw new Invalid('id has characters an OSV id cannot have');
  if (doc['withdrawn'] !== undefined) {
    str(doc['withdrawn'], 'withdrawn');
    return undefined;
  }
  const aliases = arr(doc['aliases'], 'aliases').map((a, i) => str(a, `aliases[${i}]`, 200));
  const summary = optStr(doc['summary'], 'summary', 64 * 1024) ?? optStr(doc['details'], 'details', 1024 * 1024)?.split('\n')[0];
  const severities = [
    ...specificSeverities(obj(doc['database_specific'], 'database_specific'), 'database_specific'),
    ...scoredSeverities(doc['severity'], 'severity'),
  ];
  const affected: OsvAffected[] = [];
  for (const [i, a] of arr(doc['affected'], 'affected').entries()) {
    const where = `affected[${i}]`;
    const o = obj(a, where)!;
    const pkg = obj(o['package'], `${where}.package`);
    if (pkg === undefined) continue; // an affected entry without a package names none of berth's
    const ecosystem = str(pkg['ecosystem'], `${where}.package.ecosystem`, 200);
    const name = str(pkg['name'], `${where}.package.name`, 1000);
    const ranges = arr(o['ranges'], `${where}.ranges`).map((r, j) => {
      const ro = obj(r, `${where}.ranges[${j}]`)!;
      const type = str(ro['type'], `${where}.ranges[${j}].type`, 64);
      const events = arr(ro['events'], `${where}.ranges[${j}].events`).map((e, k) => {
        const eo = obj(e, `${where}.ranges[${j}].events[${k}]`)!;
        const keys = Object.keys(eo);
        const key = keys[0];
        if (keys.length !== 1 || (key !== 'introduced' && key !== 'fixed' && key !== 'last_affected' && key !== 'limit')) {
          throw new Invalid(`${where}.ranges[${j}].events[${k}] must have exactly one of introduced, fixed, last_affected, limit`);
        }
        return { [key]: str(eo[key], `${where}.ranges[${j}].events[${k}].${key}`, 1000) } as OsvEvent;
      });
      return { type, events };
    });
    const versions = arr(o['versions'], `${where}.versions`).map((v, j) => str(v, `${where}.versions[${j}]`, 1000));
    const sev = [
      ...specificSeverities(obj(o['ecosystem_specific'], `${where}.ecosystem_specific`), `${where}.ecosystem_specific`),
      ...specificSeverities(obj(o['database_specific'], `${where}.database_specific`), `${where}.database_specific`),
      ...scoredSeverities(o['severity'], `${where}.severity`),
    ];
    affected.push({ ecosystem, name, ranges, versions, severities: sev });
  }
  return { id, aliases, ...(summary === undefined ? {} : { summary: summary.slice(0, 1000) }), affected, severities, file };
}

function dbFailed(message: string, cause?: unknown): BerthError {
  return new BerthError('SCAN_FAILED', message, { hint: 'fix or replace the advisory database (--osv DIR); a scan never approves with a broken one', cause });
}

/** Advisory files read between two turns of the event loop (reads are synchronous: see readRegularFileSync). */
const FILES_PER_TURN = 256;

/** Load every advisory under `dir`. Throws SCAN_FAILED for a missing directory or any invalid file. */
export async function loadOsvDatabase(dir: string, limits: OsvLimits = DEFAULT_OSV_LIMITS): Promise<OsvDatabase> {
  const st = await fs.stat(dir).catch((e: unknown) => {
    throw dbFailed(`cannot read the advisory directory ${dir}: ${(e as Error).message}`, e);
  });
  if (!st.isDirectory()) throw dbFailed(`the advisory database ${dir} is not a directory`);

  // First the file list (sorted, so the index's order does not depend on timing), then the files.
  const files: string[] = [];
  const walk = async (sub: string, depth: number): Promise<void> => {
    let entries: Dirent[];
    try {
      entries = (await fs.readdir(sub, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    } catch (e) {
      throw dbFailed(`cannot read the advisory directory ${sub}: ${(e as Error).message}`, e);
    }
    for (const entry of entries) {
      const file = path.join(sub, entry.name);
      if (entry.isDirectory()) {
        if (depth >= limits.depth) throw dbFailed(`advisory directory ${file} is nested deeper than ${limits.depth} levels`);
        await walk(file, depth + 1);
        continue;
      }
      if (!entry.name.endsWith('.json')) continue;
      if (files.length >= limits.files) throw dbFailed(`advisory directory ${dir} has more than ${limits.files} files`);
      files.push(file);
    }
  };
  await walk(dir, 0);

  const parsed: (OsvAdvisory | undefined)[] = new Array(files.length);
  let totalBytes = 0;
  for (const [i, file] of files.entries()) {
    // Synchronous small reads, with a turn of the event loop now and then so a long-running caller (the publisher) stays responsive.
    if (i % FILES_PER_TURN === FILES_PER_TURN - 1) await new Promise((resolve) => setImmediate(resolve));
    let bytes: Buffer;
    try {
      // O_NOFOLLOW: a symlink in place of an advisory is refused, never followed.
      bytes = readRegularFileSync(file, limits.fileBytes);
    } catch (e) {
      if (e instanceof FileRefusedError) {
        throw dbFailed(`advisory ${file}: ${e.why === 'too-large' ? `too large (${e.detail}, the limit is ${limits.fileBytes} bytes)` : `it is ${e.detail}`}`);
      }
      throw dbFailed(`cannot read advisory ${file}: ${(e as Error).message}`, e);
    }
    totalBytes += bytes.length;
    if (totalBytes > limits.totalBytes) throw dbFailed(`advisory directory ${dir} holds more than ${limits.totalBytes} bytes`);
    try {
      parsed[i] = parseAdvisory(parseStrictJson(bytes), file);
    } catch (e) {
      if (e instanceof Invalid || e instanceof JsonSyntaxError) throw dbFailed(`invalid advisory ${file}: ${e.message}`);
      throw e;
    }
  }

  const db: OsvDatabase = { index: new Map(), advisories: 0, files: files.length };
  for (const advisory of parsed) {
    if (advisory === undefined) continue;
    db.advisories++;
    const keys = new Set(advisory.affected.map((a) => indexKey(baseEcosystem(a.ecosystem), a.name)));
    for (const key of keys) {
      const list = db.index.get(key);
      if (list) list.push(advisory);
      else db.index.set(key, [advisory]);
    }
  }
  return db;
}

function indexKey(base: string, name: string): string {
  return `${base}\0${name}`;
}

/** Whether an advisory's ecosystem covers an installed package's ("Debian" covers "Debian:12"). */
export function ecosystemMatches(advisory: string, installed: string): boolean {
  if (advisory === installed) return true;
  if (baseEcosystem(advisory) !== baseEcosystem(installed)) return false;
  if (!advisory.includes(':')) return true;
  return advisory.startsWith(`${installed}:`);
}

/** Whether `version` is affected by one affected[] entry; `fixed` gets the first fixed version above it, if any. */
export function isAffected(entry: OsvAffected, version: string, compare: (a: string, b: string) => number): { affected: boolean; fixed?: string } {
  if (entry.versions.some((v) => compare(v, version) === 0)) return { affected: true };
  for (const range of entry.ranges) {
    if (range.type !== 'ECOSYSTEM') continue;
    // OSV's evaluation: walk the events in version order ("0" is before everything).
    const events = range.events
      .map((e) => {
        const [kind, v] = Object.entries(e)[0] as [keyof OsvEvent & string, string];
        return { kind, v };
      })
      .filter((e) => e.kind !== 'limit')
      .sort((a, b) => (a.v === '0' ? (b.v === '0' ? 0 : -1) : b.v === '0' ? 1 : compare(a.v, b.v)));
    let affected = false;
    let fixed: string | undefined;
    for (const e of events) {
      if (e.kind === 'introduced') {
        if (e.v === '0' || compare(version, e.v) >= 0) affected = true;
      } else if (e.kind === 'fixed') {
        if (compare(version, e.v) >= 0) affected = false;
        else if (affected && fixed === undefined) fixed = e.v;
      } else if (e.kind === 'last_affected') {
        if (compare(version, e.v) > 0) affected = false;
      }
    }
    if (affected) return { affected: true, ...(fixed === undefined ? {} : { fixed }) };
  }
  return { affected: false };
}

/** The findings of `db` for `packages` (one per advisory and installed package), without policy. */
export function matchPackages(db: OsvDatabase, packages: readonly InstalledPackage[]): Finding[] {
  const out: Finding[] = [];
  for (const pkg of packages) {
    const compare = versionCompareFor(pkg.ecosystem);
    if (compare === undefined) continue;
    const base = baseEcosystem(pkg.ecosystem);
    const name = pkg.source ?? pkg.name;
    const version = pkg.sourceVersion ?? pkg.version;
    const candidates = new Set([...(db.index.get(indexKey(base, name)) ?? []), ...(name === pkg.name ? [] : (db.index.get(indexKey(base, pkg.name)) ?? []))]);
    for (const advisory of candidates) {
      let hit: { fixed?: string; severities: Severity[] } | undefined;
      for (const entry of advisory.affected) {
        if (!ecosystemMatches(entry.ecosystem, pkg.ecosystem)) continue;
        if (entry.name !== name && entry.name !== pkg.name) continue;
        const r = isAffected(entry, entry.name === name ? version : pkg.version, compare);
        if (!r.affected) continue;
        hit = { ...(r.fixed === undefined ? {} : { fixed: r.fixed }), severities: [...(hit?.severities ?? []), ...entry.severities] };
        if (r.fixed !== undefined) break;
      }
      if (hit === undefined) continue;
      out.push({
        id: advisory.id,
        aliases: advisory.aliases,
        package: pkg.name,
        installed: pkg.version,
        ...(hit.fixed === undefined ? {} : { fixed: hit.fixed }),
        severity: maxSeverity([...advisory.severities, ...hit.severities]),
        ...(advisory.summary === undefined ? {} : { summary: advisory.summary }),
        source: 'osv',
        allowed: false,
      });
    }
  }
  return out;
}
