/**
 * The import rules of src/ (docs/hacking.md, "Layers"): no module cycle, and
 * every import points down the layer table below. Every import counts:
 * static `import`/`export … from`, `import type` (a type still couples the
 * modules: moving one moves the other), dynamic `import('…')` with a literal
 * and `typeof import('…')` types. Only relative specifiers are followed
 * (packages and node: builtins are not src/).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const SRC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src');

/**
 * The layers, highest first. A module may import modules of its own concern
 * (its folder under src/) and of any concern in a LOWER layer; never one in
 * its own layer or above. TOP is the shared modules directly in src/
 * (errors.ts, durable.ts, fsutil.ts, strict-json.ts, crashpoint.ts).
 */
const TOP = '(top-level)';
export const LAYERS: readonly (readonly string[])[] = [
  ['cli'], //                                  a file per command
  ['agent', 'publish'], //                     the D-Bus front end; the publisher (both call ops like cli does)
  ['ops'], //                                  the only place that combines the parts below
  ['deploy', 'trust'], //                      slots and host files (apply what render plans); the trust policy (asks the transport table)
  ['render', 'transport', 'store', 'systemd', 'share', 'scan'], // templates and units; the transport table and sources; the store; systemd over D-Bus; the shared store's layout and reader; scanning a rootfs
  ['runtime'], //                              runc/crun (render asks it for commands)
  ['image'], //                                references, digests, manifests, compression, registries.conf
  [TOP],
];

export type Graph = ReadonlyMap<string, ReadonlySet<string>>;

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...sourceFiles(p));
    else if (e.name.endsWith('.ts')) out.push(p);
  }
  return out.sort();
}

/** Every module specifier `file` imports, of every kind. */
export function importsOf(fileName: string, text: string): string[] {
  const sf = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const specs: string[] = [];
  const visit = (n: ts.Node): void => {
    if ((ts.isImportDeclaration(n) || ts.isExportDeclaration(n)) && n.moduleSpecifier !== undefined && ts.isStringLiteral(n.moduleSpecifier)) {
      specs.push(n.moduleSpecifier.text);
    } else if (ts.isImportEqualsDeclaration(n) && ts.isExternalModuleReference(n.moduleReference) && ts.isStringLiteral(n.moduleReference.expression)) {
      specs.push(n.moduleReference.expression.text);
    } else if (ts.isCallExpression(n) && n.expression.kind === ts.SyntaxKind.ImportKeyword) {
      const arg = n.arguments[0];
      if (arg !== undefined && ts.isStringLiteralLike(arg)) specs.push(arg.text);
    } else if (ts.isImportTypeNode(n) && ts.isLiteralTypeNode(n.argument) && ts.isStringLiteral(n.argument.literal)) {
      specs.push(n.argument.literal.text);
    }
    ts.forEachChild(n, visit);
  };
  visit(sf);
  return specs;
}

/** src/ as a graph of paths relative to src/ ("ops/install.ts"). */
function srcGraph(): Graph {
  const graph = new Map<string, Set<string>>();
  for (const file of sourceFiles(SRC)) {
    const to = new Set<string>();
    for (const spec of importsOf(file, fs.readFileSync(file, 'utf8'))) {
      if (!spec.startsWith('.')) continue;
      const target = path.resolve(path.dirname(file), spec);
      assert.ok(fs.existsSync(target), `${path.relative(SRC, file)} imports ${spec}, which does not exist`);
      to.add(path.relative(SRC, target));
    }
    graph.set(path.relative(SRC, file), to);
  }
  return graph;
}

/** One cycle per strongly connected component, as "a.ts -> b.ts -> a.ts" (Tarjan, then a path back round). */
export function findCycles(graph: Graph): string[] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[] = [];
  const connect = (v: string): void => {
    index.set(v, next);
    low.set(v, next);
    next++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        connect(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) !== index.get(v)) return;
    const component = new Set<string>();
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      component.add(w);
    } while (w !== v);
    const self = graph.get(v)?.has(v) ?? false;
    if (component.size > 1 || self) cycles.push(cycleThrough(graph, v, component).join(' -> '));
  };
  for (const v of [...graph.keys()].sort()) if (!index.has(v)) connect(v);
  return cycles;
}

/** A shortest path from `start` back to itself inside `component` (breadth first). */
function cycleThrough(graph: Graph, start: string, component: ReadonlySet<string>): string[] {
  const parent = new Map<string, string>();
  const queue = [start];
  while (queue.length > 0) {
    const v = queue.shift()!;
    for (const w of [...(graph.get(v) ?? [])].sort()) {
      if (w === start) {
        const trail = [v];
        while (trail[0] !== start) trail.unshift(parent.get(trail[0]!)!);
        return [...trail, start];
      }
      if (component.has(w) && !parent.has(w)) {
        parent.set(w, v);
        queue.push(w);
      }
    }
  }
  return [start, start];
}

function concernOf(file: string): string {
  return file.includes('/') ? file.slice(0, file.indexOf('/')) : TOP;
}

function layerOf(concern: string): number | undefined {
  const i = LAYERS.findIndex((l) => l.includes(concern));
  return i < 0 ? undefined : i;
}

/** Imports that do not point down: into the same layer's other concerns, or up. */
export function layerViolations(graph: Graph): string[] {
  const out: string[] = [];
  for (const [from, targets] of graph) {
    const a = concernOf(from);
    for (const to of targets) {
      const b = concernOf(to);
      if (a === b) continue;
      const la = layerOf(a);
      const lb = layerOf(b);
      if (la === undefined || lb === undefined) continue; // reported by the "every concern has a layer" test
      if (lb <= la) out.push(`${from} -> ${to}: ${a} may not import ${b} (${lb === la ? 'same layer' : 'upward'})`);
    }
  }
  return out.sort();
}

describe('the import graph of src/', () => {
  const graph = srcGraph();

  it('is parsed: every kind of import is seen', () => {
    const specs = importsOf('x.ts', [
      "import a from './a.ts';",
      "import type { B } from './b.ts';",
      "export { c } from './c.ts';",
      "export type * from './d.ts';",
      "const e = await import('./e.ts');",
      "let f: typeof import('./f.ts');",
      "import g = require('./g.ts');",
      "// import h from './h.ts';",
      "const i = `import('./i.ts')`;",
    ].join('\n'));
    assert.deepEqual(specs, ['./a.ts', './b.ts', './c.ts', './d.ts', './e.ts', './f.ts', './g.ts']);
    assert.ok([...graph.values()].reduce((n, s) => n + s.size, 0) > 300, 'src/ has hundreds of imports');
  });

  it('has a layer for every concern', () => {
    const missing = [...new Set([...graph.keys()].map(concernOf))].filter((c) => layerOf(c) === undefined);
    assert.deepEqual(missing, [], `add these folders of src/ to LAYERS in ${path.basename(fileURLToPath(import.meta.url))} and docs/hacking.md`);
  });

  it('has no cycle', () => {
    const cycles = findCycles(graph);
    assert.deepEqual(cycles, [], `module cycles (break each: move the shared part into its own module, below both):\n  ${cycles.join('\n  ')}`);
  });

  it('only imports down the layers', () => {
    const bad = layerViolations(graph);
    assert.deepEqual(bad, [], `imports against the layers (docs/hacking.md):\n  ${bad.join('\n  ')}`);
  });

  it('names a cycle and an upward import when there is one', () => {
    const g: Graph = new Map([
      ['ops/context.ts', new Set(['ops/recover.ts', 'deploy/lock.ts'])],
      ['ops/recover.ts', new Set(['ops/uninstall.ts'])],
      ['ops/uninstall.ts', new Set(['ops/context.ts'])],
      ['deploy/lock.ts', new Set(['ops/context.ts', 'errors.ts'])],
      ['trust/index.ts', new Set(['trust/index.ts'])],
      ['errors.ts', new Set()],
    ]);
    assert.deepEqual(findCycles(g), ['deploy/lock.ts -> ops/context.ts -> deploy/lock.ts', 'trust/index.ts -> trust/index.ts']);
    assert.deepEqual(layerViolations(g), ['deploy/lock.ts -> ops/context.ts: deploy may not import ops (upward)']);
  });
});
