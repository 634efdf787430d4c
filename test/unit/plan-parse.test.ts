/** Host plans (berth apply): schema, names, values, references, cycles and order, all before anything runs. */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import { describe, it } from 'node:test';
import { BerthError } from '../../src/errors.ts';
import { applyOrder, dependents, parsePlan } from '../../src/ops/plan.ts';

const plan = (containers: string, extra = '') => `version: 1\n${extra}containers:\n${containers}`;

/** The error parsePlan throws for `text`, asserted to be a usage error (exit 2). */
function fails(text: string, message: RegExp): BerthError {
  try {
    parsePlan(text, 'plan.yaml');
  } catch (e) {
    assert.ok(e instanceof BerthError, String(e));
    assert.equal(e.exitCode, 2, e.message);
    // One problem is the message; several are its details, one line each.
    assert.match(e.details.length ? e.details.join('\n') : e.message, message);
    return e;
  }
  assert.fail(`accepted: ${text}`);
}

const three = `
  docker:
    image: docker://registry.example.com/system/docker:1
    requires: [flannel]
    after: [flannel]
  flannel:
    image: docker://registry.example.com/system/flannel:1
    after: [etcd]
    requiredBy: [docker]
  etcd:
    image: docker://registry.example.com/system/etcd:3.4
    set: { ETCD_LISTEN_CLIENT_URLS: "http://127.0.0.1:2379", PORT: 2379, DEBUG: true }
    start: false
    autoUpdate: true
    runtime: crun
    healthCmd: etcdctl endpoint health
`;

describe('plan parsing', () => {
  it('reads entries with defaults filled in and references resolved to units', () => {
    const p = parsePlan(plan(three, 'defaults: { tlsVerify: false }\n'));
    assert.deepEqual(p.defaults, { tlsVerify: false });
    const etcd = p.entries.find((e) => e.name === 'etcd')!;
    assert.deepEqual(etcd.set, { ETCD_LISTEN_CLIENT_URLS: 'http://127.0.0.1:2379', PORT: '2379', DEBUG: 'true' });
    assert.equal(etcd.start, false);
    assert.equal(etcd.autoUpdate, true);
    assert.equal(etcd.runtime, 'crun');
    assert.equal(etcd.healthCmd, 'etcdctl endpoint health');
    const docker = p.entries.find((e) => e.name === 'docker')!;
    assert.equal(docker.start, true);
    assert.equal(docker.runtime, undefined, 'no runtime given: the image\'s label berth.runtime, else runc, decides at install');
    assert.deepEqual(docker.ordering.requires, ['flannel.service']);
    assert.deepEqual(p.entries.find((e) => e.name === 'flannel')!.ordering.requiredBy, ['docker.service']);
  });

  it('orders entries after what they need, otherwise as written', () => {
    const p = parsePlan(plan(three));
    assert.deepEqual(applyOrder(p).map((e) => e.name), ['etcd', 'flannel', 'docker']);
    assert.deepEqual(dependents(p, 'etcd').sort(), ['docker', 'flannel']);
    assert.deepEqual(dependents(p, 'docker'), []);
    // before / wantedBy on the other side count too.
    const q = parsePlan(plan('  b:\n    image: oci:/x:b\n  a:\n    image: oci:/x:a\n    before: [b]\n  c:\n    image: oci:/x:c\n    wantedBy: [a]\n'));
    assert.deepEqual(applyOrder(q).map((e) => e.name), ['c', 'a', 'b']);
  });

  it('takes the default runtime from defaults', () => {
    const p = parsePlan(plan('  a:\n    image: oci:/x:a\n', 'defaults:\n  runtime: crun\n'));
    assert.equal(p.entries[0]!.runtime, 'crun');
  });

  it('rejects unknown keys naming the key path', () => {
    fails(plan('  etcd:\n    image: oci:/x:a\n    imgae: oops\n'), /^plan\.yaml: containers\.etcd\.imgae: unknown key$/);
    fails(plan('  etcd:\n    image: oci:/x:a\n', 'defaults: { tls: false }\n'), /^plan\.yaml: defaults\.tls: unknown key$/);
    fails('version: 1\ncontainers: {}\nextra: 1\n', /^plan\.yaml: extra: unknown key$/);
  });

  it('rejects bad types and versions', () => {
    fails('containers: {}\n', /version: expected 1/);
    fails('version: 2\ncontainers: {}\n', /version: expected 1, got 2/);
    fails('- a\n', /expected a mapping/);
    fails('version: 1\ncontainers: [a]\n', /containers: expected a mapping/);
    fails(plan('  etcd: docker://x/etcd\n'), /containers\.etcd: expected a mapping/);
    fails(plan('  etcd:\n    set: {}\n'), /containers\.etcd\.image: expected a non-empty string, got nothing/);
    fails(plan('  etcd:\n    image: oci:/x:a\n    start: "yes"\n'), /etcd\.start: expected true or false, got a string/);
    fails(plan('  etcd:\n    image: oci:/x:a\n    after: etcd2.service\n'), /etcd\.after: expected a list/);
    fails(plan('  etcd:\n    image: oci:/x:a\n    after: [1]\n'), /etcd\.after\[0\]: expected a non-empty string/);
    fails(plan('  etcd:\n    image: oci:/x:a\n    set: { A: [1] }\n'), /etcd\.set\.A: expected a string, number or boolean, got a list/);
    fails(plan('  etcd:\n    image: oci:/x:a\n    healthCmd: 3\n'), /etcd\.healthCmd/);
    fails('version: 1\ncontainers:\n  a: { image: "oci:/x" }\n  a: { image: "oci:/y" }\n', /not valid YAML/);
    fails('version: 1\ncontainers: {a: [\n', /not valid YAML/);
  });

  it('rejects bad names and image references', () => {
    const e = fails(plan('  Etcd:\n    image: oci:/x:a\n'), /containers\.Etcd: invalid container name/);
    assert.equal(e.code, 'INVALID_NAME');
    fails(plan('  etcd.service:\n    image: oci:/x:a\n'), /invalid container name/);
    const r = fails(plan('  etcd:\n    image: "docker://Bad Ref"\n'), /containers\.etcd\.image/);
    assert.equal(r.code, 'INVALID_REFERENCE');
  });

  it('rejects forced and malformed set values', () => {
    fails(plan('  etcd:\n    image: oci:/x:a\n    set: { NAME: evil }\n'), /etcd\.set: NAME.*set by berth/);
    fails(plan('  etcd:\n    image: oci:/x:a\n    set: { EXEC_START: /bin/evil }\n'), /EXEC_START/);
    fails(plan('  etcd:\n    image: oci:/x:a\n    set: { A: "x\\nExecStartPre=/bin/evil" }\n'), /newline/);
    fails(plan('  etcd:\n    image: oci:/x:a\n    set: { "1A": x }\n'), /not a variable name/);
  });

  it('tells unknown entries from plain units', () => {
    const p = parsePlan(plan('  etcd:\n    image: oci:/x:a\n    after: [network-online.target, etcd2.service]\n    wantedBy: [multi-user.target]\n'));
    assert.deepEqual(p.entries[0]!.ordering.after, ['network-online.target', 'etcd2.service']);
    assert.deepEqual(p.entries[0]!.needs, [], 'plain units are no plan dependencies');
    fails(plan('  flannel:\n    image: oci:/x:a\n    after: [etcd]\n'), /flannel\.after\[0\]: etcd is not an entry of this plan/);
    fails(plan('  flannel:\n    image: oci:/x:a\n    after: ["bad unit"]\n'), /not a unit name/);
    fails(plan('  flannel:\n    image: oci:/x:a\n    after: [flannel]\n'), /cannot depend on itself/);
    // NAME.service of an entry is that entry.
    const q = parsePlan(plan('  etcd:\n    image: oci:/x:a\n  flannel:\n    image: oci:/x:b\n    after: [etcd.service]\n'));
    assert.deepEqual(q.entries[1]!.needs, ['etcd']);
  });

  it('reports a dependency cycle naming it, whatever the fields', () => {
    fails(plan('  etcd:\n    image: oci:/x:a\n    after: [flannel]\n  flannel:\n    image: oci:/x:b\n    after: [etcd]\n'), /dependency cycle etcd -> flannel -> etcd/);
    fails(
      plan('  a:\n    image: oci:/x:a\n    requires: [b]\n    before: [c]\n  b:\n    image: oci:/x:b\n    wants: [c]\n  c:\n    image: oci:/x:c\n  d:\n    image: oci:/x:d\n'),
      /dependency cycle a -> b -> c -> a/,
    );
    fails(plan('  a:\n    image: oci:/x:a\n    before: [b]\n  b:\n    image: oci:/x:b\n    before: [a]\n'), /dependency cycle a -> b -> a/);
  });

  it('reads ready: as a readiness probe and checks it like --ready-*', () => {
    const p = parsePlan(plan('  etcd:\n    image: docker://r.example/etcd:3\n    ready: {tcp: "127.0.0.1:2379", timeout: 30}\n'));
    assert.deepEqual(p.entries[0]!.ready, { kind: 'tcp', target: '127.0.0.1:2379', timeoutSec: 30 });
    assert.equal(parsePlan(plan('  etcd:\n    image: docker://r.example/etcd:3\n')).entries[0]!.ready, undefined);
    fails(plan('  etcd:\n    image: docker://r.example/etcd:3\n    ready: {tpc: "x:1"}\n'), /^plan\.yaml: containers\.etcd\.ready\.tpc: unknown key$/);
    fails(plan('  etcd:\n    image: docker://r.example/etcd:3\n    ready: {tcp: "x:1", http: "http://x/"}\n'), /etcd\.ready: more than one readiness probe/);
    fails(plan('  etcd:\n    image: docker://r.example/etcd:3\n    ready: {tcp: "x:1", timeout: "soon"}\n'), /etcd\.ready\.timeout: expected a number/);
    fails(plan('  etcd:\n    image: docker://r.example/etcd:3\n    ready: "tcp"\n'), /etcd\.ready: expected a mapping/);
  });
  it('reports every problem, one line each, with did-you-mean for keys and entry names (issue 16)', () => {
    const one = fails(plan('  etcd:\n    imge: oci:/x:a\n'), /imge: unknown key/);
    assert.equal(one.message, 'plan.yaml: 2 problems');
    assert.deepEqual(one.details, [
      'plan.yaml: containers.etcd.imge: unknown key (did you mean image?)',
      'plan.yaml: containers.etcd.image: expected a non-empty string, got nothing',
    ]);
    const typo = fails(plan('  etcd:\n    image: oci:/x:a\n    imge: oci:/x:b\n'), /^plan\.yaml: containers\.etcd\.imge: unknown key$/);
    assert.equal(typo.hint, 'did you mean image?');
    const many = fails(
      plan('  etcd:\n    image: oci:/x:a\n    strat: false\n  flannel:\n    image: oci:/x:b\n    after: [etdc]\n    start: "no"\n', 'defaults: { runtim: crun }\n'),
      /runtim/,
    );
    assert.equal(many.message, 'plan.yaml: 4 problems');
    assert.deepEqual(many.details, [
      'plan.yaml: defaults.runtim: unknown key (did you mean runtime?)',
      'plan.yaml: containers.etcd.strat: unknown key (did you mean start?)',
      'plan.yaml: containers.flannel.after[0]: etdc is not an entry of this plan (did you mean etcd? Or name a plan entry (etcd, flannel) or a full unit name such as etdc.service)',
      'plan.yaml: containers.flannel.start: expected true or false, got a string',
    ]);
  });

  it('gives YAML errors with their line and column', () => {
    fails('version: 1\ncontainers:\n  a: { image: "oci:/x" }\n  a: { image: "oci:/y" }\n', /^plan\.yaml: line 4, column 3: not valid YAML: Map keys must be unique/);
    const e = fails('version: 1\ncontainers: {a: [\n', /^plan\.yaml: line 3, column 1: not valid YAML/);
    assert.equal(e.hint, 'fix the YAML syntax');
  });

  it('accepts examples/plan.yaml', async () => {
    const text = await fs.readFile(new URL('../../examples/plan.yaml', import.meta.url), 'utf8');
    const p = parsePlan(text, 'examples/plan.yaml');
    assert.ok(p.entries.length >= 3);
    assert.deepEqual(applyOrder(p).map((e) => e.name).slice(0, 3), ['etcd', 'flannel', 'docker']);
  });
});
