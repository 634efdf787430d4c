/**
 * The ordering logic of a stack update (ops/stack.ts), pure: which
 * containers need which, in what order they are switched, which units are
 * stopped around a switch, and how a failed stack is put back so that every
 * unit is (re)started once, after what it needs. Containers are named; their
 * units are NAME.service.
 */
import type { Ordering } from '../render/ordering.ts';

export interface StackNode {
  name: string;
  /** As recorded in info.json (units: NAME.service, or bare container names). */
  ordering: Ordering;
}

/** name -> the containers it needs, sorted. */
export type NeedsGraph = ReadonlyMap<string, readonly string[]>;

function containerOf(unit: string, names: ReadonlySet<string>): string | undefined {
  const name = unit.endsWith('.service') ? unit.slice(0, -'.service'.length) : unit;
  return names.has(name) ? name : undefined;
}

/**
 * A container needs another when it is after, requires or wants it, or the
 * other names it in before, requiredBy or wantedBy (plan.ts's rule, over
 * what is installed).
 */
export function needsGraph(nodes: readonly StackNode[]): NeedsGraph {
  const names = new Set(nodes.map((n) => n.name));
  const needs = new Map<string, Set<string>>(nodes.map((n) => [n.name, new Set<string>()]));
  for (const node of nodes) {
    for (const field of ['after', 'requires', 'wants'] as const) {
      for (const unit of node.ordering[field] ?? []) {
        const dep = containerOf(unit, names);
        if (dep !== undefined && dep !== node.name) needs.get(node.name)!.add(dep);
      }
    }
    for (const field of ['before', 'requiredBy', 'wantedBy'] as const) {
      for (const unit of node.ordering[field] ?? []) {
        const dependent = containerOf(unit, names);
        if (dependent !== undefined && dependent !== node.name) needs.get(dependent)!.add(node.name);
      }
    }
  }
  return new Map([...needs].map(([n, s]) => [n, [...s].sort()]));
}

/**
 * `names` in dependency order: each after what it needs (among `names`,
 * directly or through containers not listed), otherwise in the order given.
 * A cycle (systemd accepts mutual Wants=) is broken in the order given.
 */
export function dependencyOrder(graph: NeedsGraph, names: readonly string[]): string[] {
  const wanted = [...new Set(names)];
  const before = (a: string, b: string) => ancestors(graph, b).has(a) && !ancestors(graph, a).has(b);
  const out: string[] = [];
  const left = [...wanted];
  while (left.length > 0) {
    const i = left.findIndex((n) => !left.some((m) => m !== n && before(m, n)));
    out.push(...left.splice(i === -1 ? 0 : i, 1));
  }
  return out;
}

/** Every container `name` needs, directly or through others. */
function ancestors(graph: NeedsGraph, name: string): Set<string> {
  const out = new Set<string>();
  const walk = (n: string) => {
    for (const d of graph.get(n) ?? []) {
      if (!out.has(d)) {
        out.add(d);
        walk(d);
      }
    }
  };
  walk(name);
  return out;
}

/** Every container that needs one of `names`, directly or through others (not `names` themselves), in dependency order. */
export function dependentsOf(graph: NeedsGraph, names: readonly string[]): string[] {
  const set = new Set(names);
  const found = [...graph.keys()].filter((n) => !set.has(n) && names.some((m) => ancestors(graph, n).has(m)));
  return dependencyOrder(graph, found);
}

/**
 * The units to stop before switching `member`: its active dependents not
 * stopped yet, dependents first. They are started again once, at the end
 * (or by their own switch, when they are members too): stopping them first
 * is what makes "restarted once" hold instead of systemd restarting them
 * with every unit they require.
 */
export function unitsToStop(graph: NeedsGraph, members: readonly string[], active: ReadonlySet<string>, stopped: readonly string[]): string[] {
  return dependentsOf(graph, members)
    .filter((n) => active.has(n) && !stopped.includes(n))
    .reverse();
}

export interface MemberState {
  name: string;
  /** Its unit was active before the stack began: it runs again afterwards. */
  wasActive: boolean;
  /** Its live files were (maybe partly) switched to the new slot. */
  switched: boolean;
}

export interface RollbackPlan {
  /** Members to put back on their previous slot, the last switched first (staged ones only lose their new slot). */
  back: string[];
  /** Active dependents of switched members to stop before (dependents first). */
  stop: string[];
  /** Then, in dependency order, each once: switched members that ran are restarted, stopped units started. */
  bringUp: { name: string; how: 'restart' | 'start' }[];
}

/**
 * How to undo a stack: `members` in switch order, `active` the containers
 * whose unit is active now, `stopped` what the stack stopped so far.
 */
export function planRollback(graph: NeedsGraph, members: readonly MemberState[], active: ReadonlySet<string>, stopped: readonly string[]): RollbackPlan {
  const switched = members.filter((m) => m.switched);
  const stop = unitsToStop(
    graph,
    switched.map((m) => m.name),
    active,
    stopped,
  );
  const restart = new Set(switched.filter((m) => m.wasActive).map((m) => m.name));
  const start = [...stopped, ...stop].filter((n) => !restart.has(n));
  return {
    back: [...members].reverse().map((m) => m.name),
    stop,
    bringUp: dependencyOrder(graph, [...restart, ...start]).map((name) => ({ name, how: restart.has(name) ? 'restart' : 'start' })),
  };
}
