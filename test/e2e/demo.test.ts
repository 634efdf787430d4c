/** The README's demo command works as written (it boots its own test host and registry). */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { it } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

it('npm run demo installs, serves, lists and cleans up, exiting 0', async () => {
  const { code, stdout, stderr } = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile('npm', ['run', '--silent', 'demo'], { cwd: ROOT, timeout: 300_000, env: { ...process.env, NO_COLOR: '1' } }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
  assert.equal(code, 0, `${stdout}\n${stderr}`);
  assert.match(stdout, /web\.service is active/);
  assert.match(stdout, /NAME\s+IMAGE\s+DIGEST\s+SLOT\s+STATE\s+SINCE\n\s+web\s+docker:\/\/127\.0\.0\.1:\d+\/demo\/web:1\.0\s+[0-9a-f]{12}\s+0\s+active\/running/);
  assert.match(stdout, /200 <h1>Hello from a berth system container<\/h1>/);
  assert.match(stdout, /LoadState=not-found/);
  assert.match(stdout, /Demo complete\./);
  assert.match(stdout, /no process, mount, cgroup or temp file left/);
  assert.doesNotMatch(stdout, /\x1b\[/, 'plain output when piped');
});
