/**
 * The setting most end-to-end tests share: a test host, a registry, a temp
 * directory with berth's root, an OCI layout for fixture images and a policy
 * file that accepts anything (trust is tested on its own), and `berth` run
 * inside the test host exactly as on a real host.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { TestRegistry } from './registry.ts';
import { TestHost, type ExecResult } from './test-host.ts';

export const BERTH = fileURLToPath(new URL('../../bin/berth.js', import.meta.url));

/** Commands that read images and so take --policy. */
const POLICY_COMMANDS = new Set(['install', 'update', 'pull']);

export class BerthEnv {
  readonly host: TestHost;
  readonly registry: TestRegistry;
  readonly work: string;
  readonly root: string;
  readonly layout: string;
  readonly policy: string;

  private constructor(host: TestHost, registry: TestRegistry, work: string) {
    this.host = host;
    this.registry = registry;
    this.work = work;
    this.root = path.join(work, 'root');
    this.layout = path.join(work, 'layout');
    this.policy = path.join(work, 'policy.json');
  }

  static async start(prefix: string): Promise<BerthEnv> {
    const work = await fs.mkdtemp(path.join(os.tmpdir(), `${prefix}-`));
    await fs.writeFile(path.join(work, 'policy.json'), JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] }));
    const [host, registry] = await Promise.all([TestHost.start(), TestRegistry.start()]);
    return new BerthEnv(host, registry, work);
  }

  /** berth COMMAND ARGS… inside the test host (with --policy for commands that read images). */
  berth(command: string, ...args: string[]): Promise<ExecResult> {
    const policy = POLICY_COMMANDS.has(command) ? ['--policy', this.policy] : [];
    return this.host.exec(process.execPath, [BERTH, '--root', this.root, command, ...policy, ...args], { timeoutMs: 180_000 });
  }

  /** A deployment's info.json. */
  async info(name: string): Promise<Record<string, unknown>> {
    return JSON.parse(await fs.readFile(path.join(this.root, 'containers', name, 'info.json'), 'utf8')) as Record<string, unknown>;
  }

  /** Stop everything, check nothing is left, remove the temp directory. */
  async stop(): Promise<void> {
    await this.host.stop();
    await this.registry.stop();
    await this.host.assertClean();
    await fs.rm(this.work, { recursive: true, force: true });
  }
}
