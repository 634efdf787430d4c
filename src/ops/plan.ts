/**
 * Host plans (berth apply): the YAML schema, its validation and the order
 * entries are applied in. Pure: nothing here reads the host or the network,
 * so a plan is checked whole before anything is touched. See docs/plan.md.
 */
import { LineCounter, parseDocument } from 'yaml';
import { didYouMean } from '../did-you-mean.ts';
import { BerthError } from '../errors.ts';
import { parseImageReference } from '../transport/index.ts';
import { checkName } from '../deploy/paths.ts';
import { ORDERING_FLAGS, unitNameFor, type Ordering } from '../render/ordering.ts';
import { checkReadiness, READY_KINDS, type Readiness } from '../runtime/readiness.ts';
import { checkSetValues } from '../render/values.ts';

export type OrderingField = (typeof ORDERING_FLAGS)[number]['field'];

export interface PlanEntry {
  name: string;
  image: string;
  set: Record<string, string>;
  start: boolean;
  autoUpdate: boolean;
  /** runc, crun, a path or systemd; undefined: the image's label berth.runtime, else runc. */
  runtime: string | undefined;
  /** As given; run with /bin/sh -c like --health-cmd. */
  healthCmd: string | undefined;
  /** `ready:` (like --ready-*); undefined lets the image's labels decide. */
  ready: Readiness | undefined;
  /** Unit names (plan entries resolved to NAME.service), deduplicated, in the order given. */
  ordering: Required<Ordering>;
  /** Plan entries that must be applied before this one (see dependencies()). */
  needs: string[];
}

export interface PlanDefaults {
  tlsVerify?: boolean;
  runtime?: string;
}

export interface Plan {
  version: 1;
  defaults: PlanDefaults;
  /** In the order written. */
  entries: PlanEntry[];
}

const ENTRY_KEYS = ['image', 'set', 'start', 'autoUpdate', 'runtime', 'healthCmd', 'ready', ...ORDERING_FLAGS.map((f) => f.field)] as const;
const DEFAULT_KEYS = ['tlsVerify', 'runtime'] as const;
const TOP_KEYS = ['version', 'containers', 'defaults'] as const;

function invalid(where: string, message: string, hint = 'docs/plan.md describes the plan format'): BerthError {
  return new BerthError('USAGE', where === '' ? message : `${where}: ${message}`, { hint });
}

/**
 * Every problem of a plan, not only the first: each check records what it
 * finds and the plan is refused once, at the end, one line per problem.
 */
class Problems {
  readonly list: BerthError[] = [];

  add(e: BerthError): void {
    this.list.push(e);
  }

  /** `fn`'s value, or undefined with its error recorded. */
  attempt<T>(fn: () => T): T | undefined {
    try {
      return fn();
    } catch (e) {
      if (!(e instanceof BerthError)) throw e;
      this.add(e);
      return undefined;
    }
  }

  /** Nothing when there were none; the one problem as it is; else all of them, one line each. */
  check(source: string): void {
    const [first] = this.list;
    if (first === undefined) return;
    const line = (e: BerthError) => `${source}: ${e.message}`;
    if (this.list.length === 1) throw new BerthError(first.code, line(first), { hint: first.hint ?? '' });
    const hints = new Set(this.list.map((e) => e.hint));
    const hint = hints.size === 1 ? (first.hint ?? '') : 'docs/plan.md describes the plan format';
    throw new BerthError(first.code, `${source}: ${this.list.length} problems`, {
      hint,
      details: this.list.map((e) => `${line(e)}${e.hint && e.hint !== hint ? ` (${e.hint})` : ''}`),
    });
  }
}

type Obj = Record<string, unknown>;

function isObject(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function typeName(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'a list' : typeof v === 'object' ? 'a mapping' : `a ${typeof v}`;
}

const join = (where: string, key: string) => (where === '' ? key : `${where}.${key}`);

function checkKeys(o: Obj, allowed: readonly string[], where: string, problems: Problems): void {
  for (const key of Object.keys(o)) {
    if (allowed.includes(key)) continue;
    const near = didYouMean(key, allowed);
    problems.add(invalid(join(where, key), 'unknown key', near ?? `allowed here: ${allowed.join(', ')}`));
  }
}

function str(v: unknown, where: string): string {
  if (typeof v !== 'string' || v === '') throw invalid(where, `expected a non-empty string, got ${v === undefined ? 'nothing' : typeName(v)}`);
  return v;
}

function bool(v: unknown, where: string, fallback: boolean): boolean {
  if (v === undefined) return fallback;
  if (typeof v !== 'boolean') throw invalid(where, `expected true or false, got ${typeName(v)}`);
  return v;
}

/** The plan file's text to a validated Plan; `source` names it in messages. */
export function parsePlan(text: string, source = 'plan'): Plan {
  // uniqueKeys (the default) makes a repeated key an error rather than a silent override.
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { prettyErrors: false, lineCounter });
  if (doc.errors.length > 0) {
    const problems = new Problems();
    for (const err of doc.errors) {
      const at = lineCounter.linePos(err.pos[0]);
      problems.add(new BerthError('USAGE', `line ${at.line}, column ${at.col}: not valid YAML: ${err.message.split('\n')[0]}`, { hint: 'fix the YAML syntax' }));
    }
    problems.check(source);
  }
  return validatePlan(doc.toJS({ maxAliasCount: 100 }) as unknown, source);
}

/** Check an already parsed plan: schema, names, values, references, cycles. Every problem is reported, each on its line. */
export function validatePlan(raw: unknown, source = 'plan'): Plan {
  const problems = new Problems();
  if (!isObject(raw)) throw invalid(source, `expected a mapping with version and containers, got ${typeName(raw)}`);
  checkKeys(raw, TOP_KEYS, '', problems);
  if (raw['version'] !== 1) problems.add(invalid('version', `expected 1, got ${JSON.stringify(raw['version']) ?? 'nothing'}`, 'write version: 1 at the top'));

  const defaults: PlanDefaults = {};
  if (raw['defaults'] !== undefined) {
    const d = raw['defaults'];
    if (!isObject(d)) problems.add(invalid('defaults', `expected a mapping, got ${typeName(d)}`));
    else {
      checkKeys(d, DEFAULT_KEYS, 'defaults', problems);
      problems.attempt(() => {
        if (d['tlsVerify'] !== undefined) defaults.tlsVerify = bool(d['tlsVerify'], 'defaults.tlsVerify', true);
      });
      problems.attempt(() => {
        if (d['runtime'] !== undefined) defaults.runtime = str(d['runtime'], 'defaults.runtime');
      });
    }
  }

  const containers = raw['containers'];
  if (!isObject(containers)) {
    problems.add(invalid('containers', `expected a mapping of container names to entries, got ${containers === undefined ? 'nothing' : typeName(containers)}`));
    problems.check(source);
    throw invalid(source, 'no containers');
  }
  const names = Object.keys(containers);
  const entries = names.map((name) => parseEntry(name, containers[name], new Set(names), defaults, 'containers', problems));
  problems.check(source);
  const plan: Plan = { version: 1, defaults, entries };
  for (const e of entries) e.needs = dependencies(plan, e.name);
  const cycle = findCycle(plan);
  if (cycle) {
    throw new BerthError('USAGE', `${source}: dependency cycle ${cycle.join(' -> ')}`, {
      hint: 'each name depends on the next (after, requires, wants, or the other side\'s before, requiredBy, wantedBy); break the cycle',
    });
  }
  return plan;
}

function parseEntry(name: string, raw: unknown, planNames: ReadonlySet<string>, defaults: PlanDefaults, parent: string, problems: Problems): PlanEntry {
  const where = `${parent}.${name}`;
  try {
    checkName(name);
  } catch (e) {
    problems.add(new BerthError('INVALID_NAME', `${where}: ${(e as BerthError).message}`, { hint: (e as BerthError).hint ?? '' }));
  }
  const entry: PlanEntry = {
    name,
    image: '',
    set: {},
    start: true,
    autoUpdate: false,
    runtime: defaults.runtime,
    healthCmd: undefined,
    ready: undefined,
    ordering: { after: [], before: [], requires: [], wants: [], requiredBy: [], wantedBy: [] },
    needs: [],
  };
  const ordering = entry.ordering as Record<OrderingField, string[]>;
  if (!isObject(raw)) {
    problems.add(invalid(where, `expected a mapping with at least image, got ${typeName(raw)}`));
    return entry;
  }
  checkKeys(raw, ENTRY_KEYS, where, problems);
  entry.image =
    problems.attempt(() => {
      const image = str(raw['image'], `${where}.image`);
      try {
        parseImageReference(image);
      } catch (e) {
        throw new BerthError('INVALID_REFERENCE', `${where}.image: ${(e as Error).message}`, { hint: (e as BerthError).hint ?? 'give a valid image reference' });
      }
      return image;
    }) ?? '';

  if (raw['set'] !== undefined) {
    const s = raw['set'];
    if (!isObject(s)) problems.add(invalid(`${where}.set`, `expected a mapping of KEY: value, got ${typeName(s)}`));
    else {
      let ok = true;
      for (const [key, value] of Object.entries(s)) {
        // YAML reads 8080 and true as a number and a boolean; templates get their text.
        if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') {
          problems.add(invalid(`${where}.set.${key}`, `expected a string, number or boolean, got ${typeName(value)}`));
          ok = false;
        } else entry.set[key] = String(value);
      }
      if (ok) {
        try {
          checkSetValues(entry.set);
        } catch (e) {
          problems.add(new BerthError('USAGE', `${where}.set: ${(e as BerthError).message.replace(/^--set:?\s*/, '')}`, { hint: (e as BerthError).hint ?? '' }));
        }
      }
    }
  }

  if (raw['healthCmd'] !== undefined) entry.healthCmd = problems.attempt(() => str(raw['healthCmd'], `${where}.healthCmd`));
  if (raw['ready'] !== undefined) entry.ready = problems.attempt(() => parseReady(raw['ready'], `${where}.ready`, problems));

  for (const { field } of ORDERING_FLAGS) {
    const list = raw[field];
    if (list === undefined) continue;
    if (!Array.isArray(list)) {
      problems.add(invalid(`${where}.${field}`, `expected a list of names, got ${typeName(list)}`));
      continue;
    }
    for (const [i, item] of list.entries()) {
      problems.attempt(() => {
        const ref = str(item, `${where}.${field}[${i}]`);
        const unit = referenceUnit(ref, planNames, `${where}.${field}[${i}]`);
        if (unit === `${name}.service`) throw invalid(`${where}.${field}[${i}]`, `${ref}: an entry cannot depend on itself`);
        if (!ordering[field].includes(unit)) ordering[field].push(unit);
      });
    }
  }

  problems.attempt(() => (entry.start = bool(raw['start'], `${where}.start`, true)));
  problems.attempt(() => (entry.autoUpdate = bool(raw['autoUpdate'], `${where}.autoUpdate`, false)));
  if (raw['runtime'] !== undefined) problems.attempt(() => (entry.runtime = str(raw['runtime'], `${where}.runtime`)));
  return entry;
}

/** `ready: {tcp: HOST:PORT | http: URL | cmd: COMMAND, timeout: SECONDS}`. */
function parseReady(raw: unknown, where: string, problems: Problems): Readiness | undefined {
  if (!isObject(raw)) throw invalid(where, `expected a mapping with one of ${READY_KINDS.join(', ')} (and timeout), got ${typeName(raw)}`);
  const before = problems.list.length;
  checkKeys(raw, [...READY_KINDS, 'timeout'], where, problems);
  if (problems.list.length > before) return undefined;
  const spec: Record<string, string | number | undefined> = {};
  for (const kind of READY_KINDS) if (raw[kind] !== undefined) spec[kind] = str(raw[kind], `${where}.${kind}`);
  const timeout = raw['timeout'];
  if (timeout !== undefined && typeof timeout !== 'number') throw invalid(`${where}.timeout`, `expected a number of seconds, got ${typeName(timeout)}`);
  return checkReadiness({ ...spec, timeoutSec: timeout }, where);
}

/**
 * A reference to a unit: a bare name must be a plan entry (a typo would
 * otherwise order against a unit that never exists); a name with a unit
 * suffix (docker.service, network-online.target) may be any unit.
 */
function referenceUnit(ref: string, planNames: ReadonlySet<string>, where: string): string {
  if (planNames.has(ref)) return `${ref}.service`;
  let unit: string;
  try {
    unit = unitNameFor(ref, where);
  } catch (e) {
    throw invalid(where, `${JSON.stringify(ref.slice(0, 80))} is not a unit name`, (e as BerthError).hint ?? '');
  }
  if (unit !== ref) {
    const near = didYouMean(ref, planNames);
    throw invalid(where, `${ref} is not an entry of this plan`, `${near ? `${near} Or name` : 'name'} a plan entry (${[...planNames].join(', ') || 'none'}) or a full unit name such as ${ref}.service`);
  }
  return unit;
}

/** The plan entry a unit name stands for, if any. */
function entryOf(plan: Plan, unit: string): string | undefined {
  const name = unit.endsWith('.service') ? unit.slice(0, -'.service'.length) : undefined;
  return name !== undefined && plan.entries.some((e) => e.name === name) ? name : undefined;
}

/**
 * The entries `name` needs applied (and running) first: what it is after,
 * requires or wants, and what names it in before, requiredBy or wantedBy.
 * Sorted, for stable messages.
 */
export function dependencies(plan: Plan, name: string): string[] {
  const out = new Set<string>();
  const self = plan.entries.find((e) => e.name === name);
  if (!self) return [];
  for (const field of ['after', 'requires', 'wants'] as const) {
    for (const unit of self.ordering[field]) {
      const dep = entryOf(plan, unit);
      if (dep !== undefined) out.add(dep);
    }
  }
  for (const other of plan.entries) {
    if (other.name === name) continue;
    for (const field of ['before', 'requiredBy', 'wantedBy'] as const) {
      if (other.ordering[field].includes(`${name}.service`)) out.add(other.name);
    }
  }
  return [...out].sort();
}

/** A dependency cycle as names (first repeated last), or undefined. */
export function findCycle(plan: Plan): string[] | undefined {
  const needs = new Map(plan.entries.map((e) => [e.name, e.needs.length > 0 ? e.needs : dependencies(plan, e.name)]));
  const state = new Map<string, 'visiting' | 'done'>();
  const stack: string[] = [];
  const visit = (n: string): string[] | undefined => {
    if (state.get(n) === 'done') return undefined;
    if (state.get(n) === 'visiting') return [...stack.slice(stack.indexOf(n)), n];
    state.set(n, 'visiting');
    stack.push(n);
    for (const d of needs.get(n) ?? []) {
      const c = visit(d);
      if (c) return c;
    }
    stack.pop();
    state.set(n, 'done');
    return undefined;
  };
  for (const e of plan.entries) {
    const c = visit(e.name);
    if (c) return c;
  }
  return undefined;
}

/** Entries in the order to apply them: each after what it needs; otherwise as written. */
export function applyOrder(plan: Plan): PlanEntry[] {
  const done = new Set<string>();
  const out: PlanEntry[] = [];
  while (out.length < plan.entries.length) {
    const next = plan.entries.find((e) => !done.has(e.name) && e.needs.every((d) => done.has(d)));
    if (!next) throw new BerthError('INTERNAL', 'dependency cycle in a validated plan', { hint: 'this is a bug in berth' });
    done.add(next.name);
    out.push(next);
  }
  return out;
}

/** Every entry that needs `name`, directly or through others. */
export function dependents(plan: Plan, name: string): string[] {
  const out = new Set<string>();
  const add = (n: string) => {
    for (const e of plan.entries) {
      if (e.needs.includes(n) && !out.has(e.name)) {
        out.add(e.name);
        add(e.name);
      }
    }
  };
  add(name);
  return [...out];
}
