#!/usr/bin/env node
// The machine-readable copyright file (DEP-5) for berth and every npm package
// installed under LIBDIR/node_modules, from each package's package.json
// ("license") and its licence file (the copyright lines; the licence itself
// when package.json names none). Run on the freshly installed tree, before
// prune-modules.mjs removes the licence files. An unknown licence fails the
// build: a new dependency must be looked at.
// Usage: node packaging/gen-copyright.mjs LIBDIR [PREFIX] > copyright
//   PREFIX: where LIBDIR is installed, for the Files: patterns (usr/lib/berth)
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

const lib = path.resolve(process.argv[2] ?? '');
const prefix = (process.argv[3] ?? 'usr/lib/berth').replace(/^\/+|\/+$/g, '');
if (!process.argv[2] || !existsSync(path.join(lib, 'node_modules'))) {
  process.stderr.write('usage: gen-copyright.mjs LIBDIR [PREFIX]\n');
  process.exit(2);
}
const self = JSON.parse(readFileSync(path.join(lib, 'package.json'), 'utf8'));

/** npm licence names (SPDX, mostly) -> Debian's short names. */
const NAMES = {
  MIT: 'Expat',
  'MIT/X11': 'Expat',
  X11: 'Expat',
  ISC: 'ISC',
  'Apache-2.0': 'Apache-2.0',
  Apache2: 'Apache-2.0',
  'Apache 2.0': 'Apache-2.0',
  'BSD-2-Clause': 'BSD-2-clause',
  'BSD-3-Clause': 'BSD-3-clause',
  'LGPL-3.0+': 'LGPL-3+',
  'LGPL-3.0-or-later': 'LGPL-3+',
  'BlueOak-1.0.0': 'BlueOak-1.0.0',
  '0BSD': '0BSD',
  Unlicense: 'Unlicense', // tweetnacl: public domain dedication; its text is copied from the package
};

/** Licences Debian ships in /usr/share/common-licenses: referenced, not copied. */
const COMMON = {
  'Apache-2.0': ['Apache License, Version 2.0', 'Apache-2.0'],
  'LGPL-3+': ['GNU Lesser General Public License, version 3', 'LGPL-3'],
};

const EXPAT = `Permission is hereby granted, free of charge, to any person obtaining a
copy of this software and associated documentation files (the "Software"),
to deal in the Software without restriction, including without limitation
the rights to use, copy, modify, merge, publish, distribute, sublicense,
and/or sell copies of the Software, and to permit persons to whom the
Software is furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in
all copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING
FROM, OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER
DEALINGS IN THE SOFTWARE.`;

const ISC = `Permission to use, copy, modify, and/or distribute this software for any
purpose with or without fee is hereby granted, provided that the above
copyright notice and this permission notice appear in all copies.

THE SOFTWARE IS PROVIDED "AS IS" AND THE AUTHOR DISCLAIMS ALL WARRANTIES
WITH REGARD TO THIS SOFTWARE INCLUDING ALL IMPLIED WARRANTIES OF
MERCHANTABILITY AND FITNESS. IN NO EVENT SHALL THE AUTHOR BE LIABLE FOR
ANY SPECIAL, DIRECT, INDIRECT, OR CONSEQUENTIAL DAMAGES OR ANY DAMAGES
WHATSOEVER RESULTING FROM LOSS OF USE, DATA OR PROFITS, WHETHER IN AN
ACTION OF CONTRACT, NEGLIGENCE OR OTHER TORTIOUS ACTION, ARISING OUT OF
OR IN CONNECTION WITH THE USE OR PERFORMANCE OF THIS SOFTWARE.`;

const licenceFiles = (dir) => readdirSync(dir).filter((f) => /^(licen[cs]e|copying)/i.test(f)).sort();
const readLicence = (dir) => licenceFiles(dir).map((f) => readFileSync(path.join(dir, f), 'utf8')).join('\n');

/** The licence, in Debian's short names ("Expat or Apache-2.0"). */
function licenceOf(pkg, dir) {
  let raw = pkg.license ?? pkg.licenses;
  if (Array.isArray(raw)) raw = raw.map((l) => (typeof l === 'string' ? l : l.type)).join(' OR ');
  else if (raw && typeof raw === 'object') raw = raw.type;
  if (!raw) {
    // No licence in package.json: recognise the licence file.
    const text = readLicence(dir);
    if (/Apache License\s+Version 2\.0/i.test(text)) raw = 'Apache-2.0';
    else if (/Permission is hereby granted, free of charge/.test(text)) raw = 'MIT';
    else if (/Permission to use, copy, modify, and\/or distribute/.test(text)) raw = 'ISC';
  }
  if (!raw) throw new Error(`gen-copyright: ${pkg.name}@${pkg.version}: no licence in package.json or a licence file`);
  const names = String(raw)
    .replace(/^\(|\)$/g, '')
    .split(/\s+OR\s+/i)
    .map((n) => {
      const d = NAMES[n.trim()];
      if (!d) throw new Error(`gen-copyright: ${pkg.name}@${pkg.version}: unknown licence ${JSON.stringify(n)}; add it to NAMES`);
      return d;
    });
  return [...new Set(names)].join(' or ');
}

/** "Copyright (c) 2013 Someone" lines of the licence file; else the author from package.json. */
function copyrightOf(pkg, dir) {
  // A full licence text (Apache, GPL: "TERMS AND CONDITIONS") names no one but its own authors.
  const notices = licenceFiles(dir)
    .map((f) => readFileSync(path.join(dir, f), 'utf8'))
    .filter((t) => !/TERMS AND CONDITIONS|GENERAL PUBLIC LICENSE|Blue Oak Model License/i.test(t))
    .join('\n');
  const lines = notices
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => /^(copyright\b|\(c\)|©)/i.test(l) && !/\[yyyy\]|copyright (notice|license|owner|holder)|^copyright[\s:]*$/i.test(l))
    .map((l) => l.replace(/^copyright\s*(\(c\)|©)?\s*/i, '').replace(/\s+/g, ' ').replace(/\.$/, ''));
  const author = typeof pkg.author === 'string' ? pkg.author : pkg.author?.name;
  const byAuthor = author ? author.replace(/\s*\(http[^)]*\)/, '') : `the ${pkg.name} authors`;
  // "Copyright 2010, 2011. All rights reserved" names no one: add the author.
  const named = lines.some((l) => /[a-z]{2}/i.test(l.replace(/all rights reserved/i, '')));
  return [...new Set(named ? lines : [...lines, byAuthor])];
}

/** Packages whose shipped build bundles other authors' code: the notices in that build. */
const BUNDLES = { openpgp: 'dist/node/openpgp.mjs' };
function bundledNotices(pkg, dir) {
  const file = BUNDLES[pkg.name] && path.join(dir, BUNDLES[pkg.name]);
  if (!file || !existsSync(file)) return [];
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/(?:Copyright|\(c\))\s*(?:\(C\)\s*)?(\d{4}[-\d, ]*[A-Za-z][^*\r\n]{2,70})/g)]
    .map((m) => m[1].replace(/\s*\[.*$/, '').replace(/\.?\s*All rights reserved\.?/i, '').trim())
    .filter((l) => /[a-z]{3}/i.test(l.replace(/^[\d ,-]*by\b/, '')));
}

/** Every installed package: [{ name, version, dirs, licence, copyright, dir }], one per name@version. */
function packages() {
  const byId = new Map();
  const visit = (modulesDir) => {
    for (const ent of readdirSync(modulesDir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      if (!ent.isDirectory() || ent.name.startsWith('.')) continue;
      const dirs = ent.name.startsWith('@') ? readdirSync(path.join(modulesDir, ent.name)).map((n) => path.join(modulesDir, ent.name, n)) : [path.join(modulesDir, ent.name)];
      for (const dir of dirs) {
        const file = path.join(dir, 'package.json');
        if (!existsSync(file)) continue;
        const pkg = JSON.parse(readFileSync(file, 'utf8'));
        const id = `${pkg.name}@${pkg.version}`;
        const rel = path.relative(lib, dir);
        const known = byId.get(id);
        if (known) known.dirs.push(rel);
        else byId.set(id, { name: pkg.name, version: pkg.version, dirs: [rel], licence: licenceOf(pkg, dir), copyright: [...new Set([...copyrightOf(pkg, dir), ...bundledNotices(pkg, dir)])], dir, homepage: pkg.homepage });
        if (existsSync(path.join(dir, 'node_modules'))) visit(path.join(dir, 'node_modules'));
      }
    }
  };
  visit(path.join(lib, 'node_modules'));
  return [...byId.values()];
}

/** A field's value, continuation lines indented, blank lines as " .". */
const field = (text) =>
  text
    .split('\n')
    .map((l, i) => (i === 0 ? l : l.trim() === '' ? ' .' : ` ${l}`))
    .join('\n');

const pkgs = packages();
const used = new Set(['Apache-2.0']);
let out = `Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: ${self.name}
${self.homepage ? `Source: ${self.homepage}\n` : ''}Comment: Generated by packaging/gen-copyright.mjs from the package.json and
 licence files of the npm packages installed under /${prefix}; do not edit.

Files: *
Copyright: the ${self.name} authors
License: ${NAMES[self.license] ?? self.license}
`;
for (const p of pkgs) {
  for (const l of p.licence.split(' or ')) used.add(l);
  const files = p.dirs.map((d) => `${prefix}/${d}/*`).join('\n');
  out += `\nFiles: ${field(files)}\nCopyright: ${field(p.copyright.join('\n'))}\nLicense: ${p.licence}\n`;
  out += `Comment: npm package ${p.name} ${p.version}${p.homepage ? `, ${p.homepage}` : ''}`;
  if (p.name === 'openpgp') out += `\n The build shipped (dist/node/openpgp.mjs) bundles code by other authors\n under compatible licences; their notices are kept in that file.`;
  out += '\n';
}
// Standalone licence paragraphs, each once.
const firstWith = (licence) => pkgs.find((p) => p.licence.split(' or ').includes(licence));
for (const l of [...used].sort()) {
  let text;
  if (COMMON[l]) {
    const [title, file] = COMMON[l];
    text = `On Debian systems the complete text of the ${title} is in\n/usr/share/common-licenses/${file}.`;
  } else if (l === 'Expat') text = EXPAT;
  else if (l === 'ISC') text = ISC;
  else {
    // Any other licence: its text as the first package with it ships it, minus the copyright lines.
    const p = firstWith(l);
    text = readLicence(p.dir)
      .split('\n')
      .filter((x) => !/^\s*(copyright\b|\(c\)|©)/i.test(x))
      .join('\n')
      .replace(/^\s*\n+|\s+$/g, '')
      .replace(/\t/g, '        ');
    if (!text) throw new Error(`gen-copyright: ${p.name}: no text for licence ${l}`);
  }
  out += `\nLicense: ${l}\n${text
    .split('\n')
    .map((x) => (x.trim() === '' ? ' .' : ` ${x.trimEnd()}`))
    .join('\n')}\n`;
}
process.stdout.write(out);
