/**
 * Fixture-file tests for the unit pipeline, in podman quadlet's style: each
 * test/fixtures/units/*.service is a service.template whose "## " lines say
 * how to render it and what to expect:
 *   ## name NAME                     container name (default "test")
 *   ## set KEY=VALUE                 --set
 *   ## default KEY=VALUE             manifest.json defaultValues
 *   ## after|before|requires|wants|required-by|wanted-by UNIT   ordering flags
 *   ## ready KIND TARGET [TIMEOUT]   a readiness probe (cmd, http, tcp)
 *   ## assert-key-is SECTION KEY VALUE...   every value of KEY, in order
 *   ## assert-key-contains SECTION KEY TEXT the last value of KEY contains TEXT
 *   ## assert-key-missing SECTION KEY
 *   ## assert-comment TEXT           some comment line contains TEXT
 *   ## assert-warning TEXT           some warning contains TEXT
 *   ## assert-no-warnings
 *   ## assert-failed TEXT            rendering fails with a message containing TEXT
 * Arguments are split at spaces; "..." groups words. @VAR@ stands for the
 * value berth computed for VAR (e.g. @EXEC_START@), @BERTH@ for how units
 * run berth (a fixed command here). EXEC_START is rendered for the
 * template's Type=, as berth does. The "## " lines are removed before
 * rendering.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Ordering } from '../../src/render/ordering.ts';
import { checkReadiness, type Readiness } from '../../src/runtime/readiness.ts';
import { execLine } from '../../src/render/unit-file.ts';
import { runModeOf } from '../../src/render/unit-runtime.ts';
import { renderUnit } from '../../src/render/service.ts';
import { UnitFile } from '../../src/render/unit-file.ts';
import { resolveValues } from '../../src/render/values.ts';

const dir = fileURLToPath(new URL('../fixtures/units/', import.meta.url));
const BERTH = ['/usr/bin/node', '/usr/lib/berth/bin/berth.js'];
const flags: Record<string, keyof Ordering> = {
  after: 'after',
  before: 'before',
  requires: 'requires',
  wants: 'wants',
  'required-by': 'requiredBy',
  'wanted-by': 'wantedBy',
};

function splitArgs(s: string): string[] {
  return [...s.matchAll(/"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? m[2]!);
}

interface Directive {
  verb: string;
  rest: string;
}

function directives(text: string): Directive[] {
  return text
    .split('\n')
    .filter((l) => l.startsWith('## '))
    .map((l) => {
      const body = l.slice(3);
      const sp = body.indexOf(' ');
      return sp < 0 ? { verb: body, rest: '' } : { verb: body.slice(0, sp), rest: body.slice(sp + 1) };
    });
}

async function runFixture(file: string): Promise<void> {
  const text = readFileSync(`${dir}${file}`, 'utf8');
  const ds = directives(text);
  const template = text
    .split('\n')
    .filter((l) => !l.startsWith('## '))
    .join('\n');
  let name = 'test';
  const set: Record<string, string> = {};
  const defaults: Record<string, string> = {};
  const ordering: Record<string, string[]> = {};
  let readiness: Readiness | undefined;
  for (const d of ds) {
    if (d.verb === 'name') name = d.rest;
    else if (d.verb === 'ready') {
      const [kind, target, timeout] = splitArgs(d.rest);
      readiness = checkReadiness({ [kind!]: target, timeoutSec: timeout === undefined ? undefined : Number(timeout) }, file);
    }
    else if (d.verb === 'set' || d.verb === 'default') {
      const eq = d.rest.indexOf('=');
      (d.verb === 'set' ? set : defaults)[d.rest.slice(0, eq)] = d.rest.slice(eq + 1);
    } else if (flags[d.verb] !== undefined) (ordering[flags[d.verb]!] ??= []).push(d.rest);
  }
  const runMode = runModeOf(template);
  const { values } = resolveValues({
    name,
    runMode,
    destDir: `/var/lib/berth/containers/${name}`,
    imageName: 'docker://registry.example/test:latest',
    imageId: 'sha256:0000000000000000000000000000000000000000000000000000000000000000',
    runtime: '/usr/sbin/runc',
    set,
    imageDefaults: defaults,
    uuid: '00000000-0000-4000-8000-000000000000',
    uid: 0,
    gid: 0,
  });
  const expand = (s: string) => s.replace(/@([A-Z_]+)@/g, (_, k: string) => (k === 'BERTH' ? execLine(BERTH) : (values[k] ?? `@${k}@`)));
  const input = { template, values, ordering, runMode, readiness, berth: BERTH };
  const failed = ds.find((d) => d.verb === 'assert-failed');
  if (failed) {
    await assert.rejects(renderUnit(input), (e: Error) => {
      assert.ok(e.message.includes(expand(failed.rest)), `error "${e.message}" does not contain "${failed.rest}"`);
      return true;
    });
    return;
  }
  const { unit, warnings } = await renderUnit(input);
  for (const d of ds) {
    const args = splitArgs(d.rest).map(expand);
    switch (d.verb) {
      case 'assert-key-is':
        assert.deepEqual(unit.getAll(args[0]!, args[1]!), args.slice(2), `${d.verb} ${d.rest}\n${unit.toString()}`);
        break;
      case 'assert-key-contains':
        assert.ok((unit.get(args[0]!, args[1]!) ?? '').includes(args.slice(2).join(' ')), `${d.verb} ${d.rest}\n${unit.toString()}`);
        break;
      case 'assert-key-missing':
        assert.deepEqual(unit.getAll(args[0]!, args[1]!), [], `${d.verb} ${d.rest}\n${unit.toString()}`);
        break;
      case 'assert-comment':
        assert.ok(
          unit.sections.some((s) => s.lines.some((l) => l.kind === 'comment' && l.text.includes(d.rest))),
          `${d.verb} ${d.rest}\n${unit.toString()}`,
        );
        break;
      case 'assert-warning':
        assert.ok(warnings.some((w) => w.includes(d.rest)), `no warning contains "${d.rest}": ${JSON.stringify(warnings)}`);
        break;
      case 'assert-no-warnings':
        assert.deepEqual(warnings, []);
        break;
      default:
        if (!['name', 'set', 'default', 'ready', ...Object.keys(flags)].includes(d.verb) && d.verb.startsWith('assert')) {
          assert.fail(`unknown directive ${d.verb} in ${file}`);
        }
    }
  }
  // Whatever berth produced must parse back to the same unit.
  assert.equal(UnitFile.parse(unit.toString()).toString(), unit.toString());
}

describe('unit fixtures (test/fixtures/units)', () => {
  const files = readdirSync(dir).filter((f) => f.endsWith('.service')).sort();
  it('has fixtures', () => assert.ok(files.length > 20));
  for (const file of files) it(file, () => runFixture(file));
});
