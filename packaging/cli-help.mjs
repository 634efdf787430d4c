// berth's --help texts, walked: the top level, every command and every
// subcommand. gen-completion.mjs builds on it, so the completion never
// disagrees with the program.
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const defaultBerthJs = fileURLToPath(new URL('../bin/berth.js', import.meta.url));

/** `berth ...path --help`, unwrapped (COLUMNS very wide): one line per option or command, the same text on every machine. */
export function help(berthJs, path) {
  return execFileSync(process.execPath, [berthJs, ...path, '--help'], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0', COLUMNS: '10000' } });
}

/** The words listed under "Commands:" for `path` ("  berth trust show ..." -> "show"). */
export function subcommands(text, path) {
  const out = [];
  const re = new RegExp(`^  berth ${path.map((p) => `${p} `).join('')}([a-z][a-z-]*)`);
  let inCommands = false;
  for (const line of text.split('\n')) {
    if (/^Commands:/.test(line)) inCommands = true;
    else if (/^\S/.test(line)) inCommands = false;
    else if (inCommands) {
      const m = re.exec(line);
      if (m && !out.includes(m[1])) out.push(m[1]);
    }
  }
  return out;
}

/** Long options (--name) a help text lists, in order. */
export function options(text) {
  const out = [];
  for (const m of text.matchAll(/^\s+(?:-\w, )?(--[a-z][\w.-]*)/gm)) if (!out.includes(m[1])) out.push(m[1]);
  return out;
}

/** [{ path, text }] for every command and subcommand, depth first, after the top level (path []). */
export function walk(berthJs = defaultBerthJs) {
  const all = [];
  const visit = (path) => {
    const text = help(berthJs, path);
    all.push({ path, text });
    for (const sub of subcommands(text, path)) visit([...path, sub]);
  };
  visit([]);
  return all;
}
