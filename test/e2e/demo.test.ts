/** The README's demo command works as written (it boots its own test host and registry). */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { it } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

it('npm run demo: signed images, apply etcd -> flannel -> docker, list, automatic rollback, clean up; exit 0', async () => {
  const { code, stdout, stderr } = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile('npm', ['run', '--silent', 'demo'], { cwd: ROOT, timeout: 600_000, maxBuffer: 16 * 1024 * 1024, env: { ...process.env, NO_COLOR: '1' } }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
  assert.equal(code, 0, `${stdout}\n${stderr}`);
  assert.match(stdout, /berth: error: .*(rejected|untrusted|not signed|no signature)/i, 'an unsigned image is refused');
  assert.match(stdout, /NAME\s+IMAGE\s+DIGEST\s+SLOT\s+STATE\s+SINCE/);
  for (const name of ['etcd', 'flannel', 'docker']) assert.match(stdout, new RegExp(`\\n\\s+${name}\\s+docker://127\\.0\\.0\\.1:\\d+/system/${name}:1\\.0\\s+[0-9a-f]{12}\\s+0\\s+active/running`));
  assert.match(stdout, /systemd started them in this order: etcd\.service -> flannel\.service -> docker\.service/);
  assert.match(stdout, /10\.40\.0\.0\/16/);
  assert.match(stdout, /failed and was rolled back/);
  assert.match(stdout, /etcd answers again, with its data/);
  assert.match(stdout, /Demo complete\./);
  assert.match(stdout, /no process, mount, cgroup or temp file left/);
  assert.doesNotMatch(stdout, /\x1b\[/, 'plain output when piped');
});
