// berth trust show/set/default: policy.json and registries.d edits that keep what they do not
// understand, are atomic, and give a policy checkTrust uses; plus the CLI modules through yargs.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import * as openpgp from 'openpgp';
import { isBerthError } from '../../src/errors.ts';
import { digestOf, encodedOf } from '../../src/image/digest.ts';
import { parseImageReference } from '../../src/transport/index.ts';
import { checkTrust } from '../../src/trust/index.ts';
import { keygen, parseScopeArgument, setDefaultTrust, setTrust, showTrust } from '../../src/trust/manage.ts';
import { buildPayload } from '../../src/trust/payload.ts';
import { signPayload } from '../../src/trust/sign.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

describe('trust management', () => {
  let work: string;
  let key: openpgp.PrivateKey;
  let pubFile: string;
  let n = 0;

  const caseDir = async () => {
    const dir = path.join(work, `case-${++n}`);
    await mkdir(dir);
    return { dir, policyPath: path.join(dir, 'policy.json'), registriesDir: path.join(dir, 'registries.d') };
  };
  const readJson = async (f: string) => JSON.parse(await readFile(f, 'utf8')) as Record<string, unknown>;

  before(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'berth-trust-manage-'));
    const k = await openpgp.generateKey({ type: 'ecc', curve: 'ed25519Legacy', userIDs: [{ name: 'ops', email: 'ops@example.com' }], format: 'object' });
    key = k.privateKey;
    pubFile = path.join(work, 'ops.asc');
    await writeFile(pubFile, k.publicKey.armor());
  });

  after(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('creates a policy that rejects by default, with the scope set; checkTrust then uses it', async () => {
    const c = await caseDir();
    const r = await setTrust({ ...c, scope: 'docker://127.0.0.1:5000/demo', type: 'signedBy', pubkeys: [pubFile], lookaside: `file://${c.dir}/sigs` });
    assert.equal(r.registriesFile, path.join(c.registriesDir, 'berth.yaml'));
    assert.deepEqual(await readJson(c.policyPath), {
      default: [{ type: 'reject' }],
      transports: { docker: { '127.0.0.1:5000/demo': [{ type: 'signedBy', keyType: 'GPGKeys', keyPath: pubFile }] } },
    });
    assert.equal((await stat(c.policyPath)).mode & 0o777, 0o644);
    assert.equal(await readFile(path.join(c.registriesDir, 'berth.yaml'), 'utf8'), `docker:\n  127.0.0.1:5000/demo:\n    lookaside: file://${c.dir}/sigs\n`);

    const manifest = Buffer.from('{"schemaVersion":2}');
    const ref = parseImageReference('docker://127.0.0.1:5000/demo/app:1');
    await assert.rejects(checkTrust(ref, manifest, c), (e: unknown) => isBerthError(e) && e.code === 'UNTRUSTED');
    const sigDir = path.join(c.dir, `sigs/demo/app@sha256=${encodedOf(digestOf(manifest))}`);
    await mkdir(sigDir, { recursive: true });
    await writeFile(path.join(sigDir, 'signature-1'), await signPayload(buildPayload({ manifestDigest: digestOf(manifest), dockerReference: '127.0.0.1:5000/demo/app:1', creator: 't', timestamp: 1 }), key));
    assert.equal((await checkTrust(ref, manifest, c)).verifiedBy, key.getFingerprint().toUpperCase());
    await assert.rejects(checkTrust(parseImageReference('docker://127.0.0.1:5000/elsewhere/app:1'), manifest, c), (e: unknown) => isBerthError(e) && /says reject/.test(e.message));
  });

  it('keeps every key it does not understand, in order, and replaces a scope', async () => {
    const c = await caseDir();
    const original = {
      default: [{ type: 'insecureAcceptAnything' }],
      transports: {
        'docker-daemon': { '': [{ type: 'insecureAcceptAnything' }] },
        atomic: { 'a.example.com:5000/ns': [{ type: 'signedBy', keyType: 'GPGKeys', keyPath: '/etc/pki/a.gpg' }] },
        docker: {
          'quay.io/sig': [{ type: 'sigstoreSigned', keyPath: '/etc/pki/cosign.pub', signedIdentity: { type: 'matchRepository' } }],
          'r.example.com': [{ type: 'reject' }],
        },
      },
    };
    await writeFile(c.policyPath, JSON.stringify(original, null, 2), { mode: 0o600 });
    await setTrust({ ...c, scope: 'r.example.com', type: 'accept' });
    await setTrust({ ...c, scope: 'oci:/srv/images', type: 'reject' });
    const after = await readJson(c.policyPath);
    const expected = structuredClone(original) as typeof original & { transports: Record<string, unknown> };
    expected.transports.docker['r.example.com'] = [{ type: 'insecureAcceptAnything' }];
    expected.transports['oci'] = { '/srv/images': [{ type: 'reject' }] };
    assert.deepEqual(after, expected);
    assert.deepEqual(Object.keys(after['transports'] as object), ['docker-daemon', 'atomic', 'docker', 'oci']);
    assert.equal((await stat(c.policyPath)).mode & 0o777, 0o600, 'the mode is kept');
    assert.deepEqual((await readdir(c.dir)).sort(), ['policy.json'], 'no temporary files are left');

    await setDefaultTrust('reject', c);
    assert.deepEqual((await readJson(c.policyPath))['default'], [{ type: 'reject' }]);
    await setDefaultTrust('accept', c);
    assert.deepEqual((await readJson(c.policyPath))['default'], [{ type: 'insecureAcceptAnything' }]);
  });

  it('edits the registries.d file that already defines the scope, keeping comments and unknown keys', async () => {
    const c = await caseDir();
    await mkdir(c.registriesDir);
    const other = path.join(c.registriesDir, 'vendor.yaml');
    await writeFile(other, '# vendor signatures\ndocker:\n  r.example.com:\n    sigstore: https://old.example.com/sigs # legacy key\n    use-sigstore-attachments: true\n');
    await writeFile(path.join(c.registriesDir, 'default.yaml'), 'default-docker:\n  lookaside: file:///var/lib/containers/sigstore\n');
    const r = await setTrust({ ...c, scope: 'r.example.com', type: 'signedBy', pubkeys: [pubFile], lookaside: 'https://new.example.com/sigs' });
    assert.equal(r.registriesFile, other);
    const text = await readFile(other, 'utf8');
    assert.match(text, /^# vendor signatures\n/);
    assert.match(text, /sigstore: https:\/\/old.example.com\/sigs # legacy key/);
    assert.match(text, /use-sigstore-attachments: true/);
    assert.match(text, /lookaside: https:\/\/new.example.com\/sigs/);
    assert.deepEqual((await readdir(c.registriesDir)).sort(), ['default.yaml', 'vendor.yaml']);

    const d = await setTrust({ ...c, scope: 'default', type: 'reject', lookaside: 'file:///srv/sigs' });
    assert.equal(d.registriesFile, path.join(c.registriesDir, 'default.yaml'));
    assert.match(await readFile(d.registriesFile!, 'utf8'), /default-docker:\n {2}lookaside: file:\/\/\/srv\/sigs\n/);

    const shown = await showTrust(c);
    assert.deepEqual(
      shown.entries.map((e) => [e.transport, e.scope, e.type, e.lookaside]),
      [
        ['default', '', 'reject', 'file:///srv/sigs'],
        ['docker', 'r.example.com', 'signedBy', 'https://new.example.com/sigs'],
      ],
    );
    assert.deepEqual(shown.entries[1]!.fingerprints, [key.getFingerprint().toUpperCase()]);
  });

  it('refuses bad input and leaves files untouched', async () => {
    const c = await caseDir();
    const broken = '{"default": [{"type": "reject"}],,}';
    await writeFile(c.policyPath, broken);
    await assert.rejects(setTrust({ ...c, scope: 'r.example.com', type: 'accept' }), (e: unknown) => isBerthError(e) && e.code === 'POLICY_INVALID' && /cannot edit/.test(e.message));
    assert.equal(await readFile(c.policyPath, 'utf8'), broken);
    await rm(c.policyPath);

    const usage = (p: Promise<unknown>, code: string, re: RegExp) => assert.rejects(p, (e: unknown) => isBerthError(e) && e.code === code && re.test(e.message));
    await usage(setTrust({ ...c, scope: 'r.example.com', type: 'signedBy' }), 'USAGE', /needs at least one --pubkeys/);
    await usage(setTrust({ ...c, scope: 'r.example.com', type: 'accept', pubkeys: [pubFile] }), 'USAGE', /only goes with --type signedBy/);
    await writeFile(path.join(c.dir, 'not-a-key'), 'hello');
    await usage(setTrust({ ...c, scope: 'r.example.com', type: 'signedBy', pubkeys: [path.join(c.dir, 'not-a-key')] }), 'KEY_INVALID', /not an OpenPGP keyring/);
    await usage(setTrust({ ...c, scope: 'r.example.com', type: 'accept', lookaside: 'ftp://x/y' }), 'USAGE', /only file:, http: and https:/);
    await usage(setTrust({ ...c, scope: 'oci:/srv', type: 'accept', lookaside: 'file:///x' }), 'USAGE', /registry \(docker\) scopes only/);
    await usage(setTrust({ ...c, scope: 'docker-archive:/x.tar', type: 'accept' }), 'USAGE', /supports no scope/);
    assert.deepEqual(await readdir(c.dir), ['not-a-key'], 'nothing was written');
  });

  it('parses scope arguments', () => {
    assert.deepEqual(parseScopeArgument('default'), { transport: 'default', scope: '' });
    assert.deepEqual(parseScopeArgument('docker://r.example.com/ns/'), { transport: 'docker', scope: 'r.example.com/ns' });
    assert.deepEqual(parseScopeArgument('r.example.com:5000'), { transport: 'docker', scope: 'r.example.com:5000' });
    assert.deepEqual(parseScopeArgument('*.example.com'), { transport: 'docker', scope: '*.example.com' });
    assert.deepEqual(parseScopeArgument('oci:/srv/images/'), { transport: 'oci', scope: '/srv/images' });
    assert.throws(() => parseScopeArgument('ex*ample.com'), /wildcard/);
  });

  it('CLI: berth trust set/default/show and berth sign option parsing, through yargs', { timeout: 60_000 }, async () => {
    const c = await caseDir();
    // The commands as main.ts registers them, with strict parsing.
    const script = `
      import yargs from 'yargs';
      import { globalOptions } from './src/cli/common.ts';
      import { trustCommand } from './src/cli/trust.ts';
      import { signCommand } from './src/cli/sign.ts';
      await globalOptions(yargs(JSON.parse(process.env.ARGV))).command(trustCommand).command(signCommand).strict()
        .fail((m, e) => { if (e) throw e; process.stderr.write(m + '\\n'); process.exit(2); }).parseAsync();`;
    const berth = (...argv: string[]) =>
      new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
        execFile(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: ROOT, env: { ...process.env, ARGV: JSON.stringify(argv) } }, (err, stdout, stderr) =>
          resolve({ code: err === null ? 0 : Number(err.code), stdout, stderr }),
        );
      });
    const common = ['--policy', c.policyPath, '--registries.d', c.registriesDir];

    let r = await berth('trust', 'set', ...common, '--type', 'signedBy', '--pubkeys', pubFile, '--lookaside', 'file:///srv/sigs', 'r.example.com/infra');
    assert.equal(r.code, 0, r.stderr);
    assert.ok((await readdir(c.registriesDir)).includes('berth.yaml'), '--registries.d is one option (no dot-notation)');
    r = await berth('trust', 'default', 'reject', ...common);
    assert.equal(r.code, 0, r.stderr);
    r = await berth('trust', 'show', '--json', ...common);
    assert.equal(r.code, 0, r.stderr);
    const shown = JSON.parse(r.stdout) as { entries: { scope: string; type: string; lookaside?: string }[] };
    assert.deepEqual(shown.entries.map((e) => [e.scope, e.type, e.lookaside ?? null]), [['', 'reject', null], ['r.example.com/infra', 'signedBy', 'file:///srv/sigs']]);
    r = await berth('trust', 'show', ...common);
    assert.match(r.stdout, /^TRANSPORT\s+SCOPE\s+TYPE\s+KEYS\s+LOOKASIDE\n/);
    assert.match(r.stdout, new RegExp(`docker\\s+r.example.com/infra\\s+signedBy\\s+${key.getFingerprint().toUpperCase()}\\s+file:///srv/sigs`));

    r = await berth('trust', 'show', '--policy', path.join(c.dir, 'missing.json'));
    assert.equal(r.code, 8);
    assert.match(r.stderr, /missing.json does not exist/);
    r = await berth('trust', 'set', ...common, '--type', 'bogus', 'x.example.com');
    assert.equal(r.code, 2);
    r = await berth('sign', '--key', pubFile, 'oci:/srv/images:app');
    assert.equal(r.code, 2);
    assert.match(r.stderr, /berth sign signs registry images/);
    r = await berth('sign', 'docker://r.example.com/app:1');
    assert.equal(r.code, 2, 'missing --key');
  });

  it('sigstoreSigned: keyPath(s) or fulcio + Rekor, use-sigstore-attachments for the scope, idempotent; show names the keys; bad keys refused', async () => {
    const { policyPath, registriesDir, dir } = await caseDir();
    const prefix = path.join(dir, 'cosign');
    const made = await keygen(prefix, async () => 'pw');
    assert.equal((await stat(made.privateKey)).mode & 0o777, 0o600);
    await assert.rejects(keygen(prefix, async () => 'pw'), (e: unknown) => isBerthError(e) && e.code === 'USAGE' && /already exists/.test(e.message));

    const r = await setTrust({ policyPath, registriesDir, scope: 'reg.example/app', type: 'sigstoreSigned', pubkeys: [made.publicKey] });
    assert.deepEqual(r.requirement, { type: 'sigstoreSigned', keyPath: made.publicKey });
    const yaml = await readFile(path.join(registriesDir, 'berth.yaml'), 'utf8');
    assert.equal(yaml, 'docker:\n  reg.example/app:\n    use-sigstore-attachments: true\n');
    const before = await stat(path.join(registriesDir, 'berth.yaml'));
    await setTrust({ policyPath, registriesDir, scope: 'reg.example/app', type: 'sigstoreSigned', pubkeys: [made.publicKey] });
    assert.equal((await stat(path.join(registriesDir, 'berth.yaml'))).ino, before.ino, 'registries.d is not rewritten when nothing changes');
    const shown = (await showTrust({ policyPath, registriesDir })).entries.find((e) => e.scope === 'reg.example/app');
    assert.deepEqual(shown?.fingerprints, [made.fingerprint]);

    const ca = path.join(dir, 'ca.pem');
    await writeFile(ca, 'not checked here');
    const keyless = await setTrust({ policyPath, registriesDir, scope: 'reg.example/other', type: 'sigstoreSigned', fulcio: { caPath: ca, oidcIssuer: 'https://issuer.example', subjectEmail: 'a@example.com' }, rekorKeys: [made.publicKey] });
    assert.deepEqual(keyless.requirement, { type: 'sigstoreSigned', fulcio: { caPath: ca, oidcIssuer: 'https://issuer.example', subjectEmail: 'a@example.com' }, rekorPublicKeyPath: made.publicKey });

    const code = (e: unknown) => (isBerthError(e) ? e.code : String(e));
    await assert.rejects(setTrust({ policyPath, registriesDir, scope: 'reg.example/app', type: 'sigstoreSigned', pubkeys: [made.privateKey] }), (e) => code(e) === 'KEY_INVALID');
    await assert.rejects(setTrust({ policyPath, registriesDir, scope: 'reg.example/app', type: 'sigstoreSigned', pubkeys: [pubFile] }), (e) => code(e) === 'KEY_INVALID');
    await assert.rejects(setTrust({ policyPath, registriesDir, scope: 'reg.example/app', type: 'sigstoreSigned' }), (e) => code(e) === 'USAGE');
    await assert.rejects(setTrust({ policyPath, registriesDir, scope: 'reg.example/app', type: 'sigstoreSigned', fulcio: { caPath: ca, oidcIssuer: 'i', subjectEmail: 'e' } }), (e) => code(e) === 'USAGE' && /rekor/.test((e as Error).message));
    await assert.rejects(setTrust({ policyPath, registriesDir, scope: 'reg.example/app', type: 'signedBy', pubkeys: [pubFile], rekorKeys: [made.publicKey] }), (e) => code(e) === 'USAGE');
  });
});
