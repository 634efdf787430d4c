#!/usr/bin/env node
// Trim an installed production node_modules to what berth runs: no native
// prebuilds (the tree is architecture-independent, and berth never loads them:
// the bare-* modules are for the Bare runtime, not Node), no source maps,
// typings, tests, examples, docs or licence files of dependencies (their
// licences are collected into the copyright file before this runs, by
// gen-copyright.mjs), and of a package that ships several builds only the one
// berth loads, nor their command-line tools. Then every direct dependency is imported from DIR to prove the
// trimmed tree still loads, and the tree is checked for any ELF file left.
// Usage: node packaging/prune-modules.mjs LIBDIR
import { chmodSync, existsSync, lstatSync, openSync, readFileSync, readSync, closeSync, readdirSync, rmSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import path from 'node:path';

const lib = path.resolve(process.argv[2] ?? '');
const modules = path.join(lib, 'node_modules');
if (!process.argv[2] || !existsSync(modules)) {
  process.stderr.write('usage: prune-modules.mjs LIBDIR (with LIBDIR/node_modules)\n');
  process.exit(2);
}

/** Files no package needs at run time, by name. */
const junkFile = (name) =>
  /\.(map|d\.ts|d\.mts|d\.cts|md|markdown|gyp|gypi|c|cc|cpp|h|hpp|o|a|node|bare|tsbuildinfo)$/i.test(name) ||
  /^(readme|changelog|changes|history|authors|contributors|licen[cs]e|copying|notice)([.-].*)?$/i.test(name) ||
  /^(\.npmignore|\.travis\.yml|\.eslintrc.*|\.editorconfig|\.prettierrc.*|\.gitattributes|\.nycrc.*|CMakeLists\.txt|Makefile|tsconfig\.json|test\.html)$/i.test(name);
/** Directories of a package (directly below its package.json) that hold no run-time code. */
const junkDirInPackage = new Set(['test', 'tests', '__tests__', 'example', 'examples', 'bench', 'benchmark', 'benchmarks', '.github', 'prebuilds', 'coverage', 'docs']);
/** Packages that ship several builds: keep the one Node loads for berth (`import`). */
const onlyBuild = {
  // exports["."].import; the browser, lightweight, CommonJS and minified builds and their maps are 16 MiB.
  openpgp: { dir: 'dist', keep: ['dist/node/openpgp.mjs'] },
  // the "browser" condition's copy of dist/.
  yaml: { dir: 'browser', keep: [] },
};

let removed = 0;
const rm = (p) => {
  removed++;
  rmSync(p, { recursive: true, force: true });
};

/** The command-line tools of a package (its "bin"): berth never runs them. */
function binFiles(dir) {
  try {
    const { bin } = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8'));
    return new Set((typeof bin === 'string' ? [bin] : Object.values(bin ?? {})).map((b) => path.join(dir, b)));
  } catch {
    return new Set();
  }
}

function walk(dir, bins = new Set()) {
  const isPkg = existsSync(path.join(dir, 'package.json'));
  if (isPkg) bins = new Set([...bins, ...binFiles(dir)]);
  for (const ent of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, ent.name);
    if (ent.isDirectory()) {
      if (ent.name === '.bin') rm(p);
      else if (isPkg && dir !== modules && junkDirInPackage.has(ent.name)) rm(p);
      else walk(p, bins);
    } else if (ent.isSymbolicLink()) {
      rm(p);
    } else if ((junkFile(ent.name) && ent.name !== 'package.json') || bins.has(p) || (isPkg && ent.name === 'test.js')) {
      rm(p);
    } else {
      chmodSync(p, 0o644);
    }
  }
  chmodSync(dir, 0o755);
  if (dir !== modules && readdirSync(dir).length === 0) rm(dir);
}

/** Remove everything under PKG/dir except `keep`. */
function keepOnly(pkgDir, sub, keep) {
  const base = path.join(pkgDir, sub);
  if (!existsSync(base)) return;
  const visit = (d) => {
    for (const ent of readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, ent.name);
      const rel = path.relative(pkgDir, p);
      if (ent.isDirectory()) {
        if (keep.some((k) => k.startsWith(`${rel}/`))) visit(p);
        else rm(p);
      } else if (!keep.includes(rel)) rm(p);
    }
  };
  visit(base);
  if (keep.length === 0) rm(base);
}

for (const [name, { dir, keep }] of Object.entries(onlyBuild)) {
  const pkgDir = path.join(modules, name);
  if (!existsSync(pkgDir)) continue;
  for (const k of keep) if (!existsSync(path.join(pkgDir, k))) throw new Error(`prune-modules: ${name} has no ${k} any more; update onlyBuild`);
  keepOnly(pkgDir, dir, keep);
}
walk(modules);

// Anything native left would make the package architecture-dependent.
const elf = [];
const scan = (d) => {
  for (const ent of readdirSync(d, { withFileTypes: true })) {
    const p = path.join(d, ent.name);
    if (ent.isDirectory()) scan(p);
    else if (ent.isFile() && lstatSync(p).size >= 4) {
      const fd = openSync(p, 'r');
      const b = Buffer.alloc(4);
      readSync(fd, b, 0, 4, 0);
      closeSync(fd);
      if (b.equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]))) elf.push(path.relative(lib, p));
    }
  }
};
scan(modules);
if (elf.length) throw new Error(`prune-modules: native code left in the tree: ${elf.join(', ')}`);

// The trimmed tree still loads: every dependency berth names, imported from DIR as berth imports it.
const { dependencies = {} } = JSON.parse(readFileSync(path.join(lib, 'package.json'), 'utf8'));
const code = Object.keys(dependencies).map((d) => `await import(${JSON.stringify(d)});`).join('\n');
execFileSync(process.execPath, ['--input-type=module', '-e', code], { cwd: lib, stdio: ['ignore', 'ignore', 'inherit'] });
process.stderr.write(`prune-modules: removed ${removed} files and directories from ${path.relative(process.cwd(), modules) || modules}\n`);
