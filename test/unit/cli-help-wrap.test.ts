/**
 * berth --help wraps at word boundaries (yargs 17 alone splits words:
 * "pla" / "in-HTTP"): at 60, 80 and 100 columns no word is split across
 * lines (the words are exactly those of the unwrapped text) and no line is
 * longer than the width unless it is a single word that long.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { formatHelp } from '../../src/cli/help.ts';

const BERTH = fileURLToPath(new URL('../../bin/berth.js', import.meta.url));
const help = (args: string[], columns: number) =>
  execFileSync(process.execPath, [BERTH, ...args, '--help'], { encoding: 'utf8', env: { ...process.env, COLUMNS: String(columns), BERTH_FROM_SOURCE: '1' } });
const words = (s: string) => s.split(/\s+/).filter(Boolean);

describe('berth --help wrapping', () => {
  for (const args of [[], ['install'], ['update'], ['trust', 'set']]) {
    const unwrapped = help(args, 10000);
    for (const width of [60, 80, 100]) {
      it(`berth ${args.join(' ')} --help at ${width} columns: no word split`, () => {
        const text = help(args, width);
        assert.deepEqual(words(text), words(unwrapped), 'the same words as unwrapped: none split');
        for (const line of text.split('\n')) {
          if (line.length > width) assert.equal(words(line).length, 1, `over ${width} columns only for one long word: ${JSON.stringify(line)}`);
        }
      });
    }
  }

  it('keeps the option column and yargs notes whole', () => {
    const text = formatHelp('Options:\n  --tls-verify  require HTTPS and verified certificates (--tls-verify=false for a local plain-HTTP registry)  [boolean] [default: true, or registries.conf]', 60);
    assert.equal(
      text,
      [
        'Options:',
        '  --tls-verify  require HTTPS and verified certificates',
        '                (--tls-verify=false for a local plain-HTTP',
        '                registry) [boolean]',
        '                [default: true, or registries.conf]',
      ].join('\n'),
    );
  });
});
