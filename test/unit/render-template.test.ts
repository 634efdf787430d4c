import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { jsonEscape, substituteJson } from '../../src/render/json-template.ts';
import { expand, substitute, substituteLines } from '../../src/render/template.ts';

describe('string.Template modes', () => {
  it('strict mode refuses a stray $, keep mode leaves it (atomic\'s safe_substitute)', () => {
    assert.throws(() => substitute('echo $1', {}, 'f'), /f, line 1: invalid placeholder "\$1"/);
    assert.equal(expand('echo $1 "$@" $(date) ${ x $$ $A', { A: 'a' }, 'f', { invalid: 'keep' }), 'echo $1 "$@" $(date) ${ x $ a');
  });
  it('names every missing variable once, with the file', () => {
    assert.throws(() => expand('$A ${B} $A', {}, 'x.template', { invalid: 'keep' }), {
      code: 'USAGE',
      message: 'x.template: variables $A, $B have no value',
    });
  });
  it('does not take Object.prototype members for values', () => {
    assert.throws(() => substitute('$constructor $toString', {}, 'f'), /\$constructor, \$toString have no value/);
  });
});

describe('line-based substitution (units, tmpfiles)', () => {
  it('refuses a value with a newline, naming the variable', () => {
    assert.throws(() => substituteLines('Description=$D\n', { D: 'x\nExecStartPre=/bin/evil' }, 'svc', 'keep'), /svc: the value of \$D contains a newline/);
  });
  it('refuses a trailing backslash only where it would join lines', () => {
    assert.throws(() => substituteLines('Description=$D\nRequires=x\n', { D: 'a \\' }, 'svc', 'keep'), /ends with a backslash/);
    assert.throws(() => substituteLines('Description=${D}', { D: 'a\\' }, 'svc', 'keep'), /ends with a backslash/);
    assert.equal(substituteLines('Description=$D here\n', { D: 'a\\' }, 'svc', 'keep'), 'Description=a\\ here\n');
  });
});

describe('JSON template substitution', () => {
  const template = '{"env": ["RECEIVER=$RECEIVER", "P=${P}"], "caps": [$CAPS], "n": 1 $EXTRA}';
  it('escapes values inside strings, so a value cannot close the string', () => {
    const evil = 'x", "root": {"path": "/", "readonly": false}, "y": "';
    const { text, rawVariables } = substituteJson(template, { RECEIVER: evil, P: 'a\\b\t', CAPS: '"CAP_KILL"', EXTRA: '' }, 'c');
    const parsed = JSON.parse(text) as { env: string[]; root?: unknown; caps: string[] };
    assert.deepEqual(parsed.env, [`RECEIVER=${evil}`, 'P=a\\b\t']);
    assert.equal(parsed.root, undefined);
    assert.deepEqual(parsed.caps, ['CAP_KILL']);
    assert.deepEqual(rawVariables.sort(), ['CAPS', 'EXTRA']);
  });
  it('inserts values outside strings as JSON, but refuses one that leaves a string open', () => {
    const { text } = substituteJson(template, { RECEIVER: 'r', P: 'p', CAPS: '"A", "B"', EXTRA: ', "m": [1]' }, 'c');
    assert.deepEqual(JSON.parse(text), { env: ['RECEIVER=r', 'P=p'], caps: ['A', 'B'], n: 1, m: [1] });
    assert.throws(() => substituteJson(template, { RECEIVER: 'r', P: 'p', CAPS: '"A', EXTRA: '' }, 'c'), /\$CAPS is inserted as JSON and leaves a string open/);
  });
  it('knows escaped quotes inside template strings', () => {
    const { text } = substituteJson('{"a": "say \\"$X\\" now"}', { X: '"' }, 'c');
    assert.deepEqual(JSON.parse(text), { a: 'say """ now' });
  });
  it('escapes control characters like JSON.stringify', () => {
    assert.equal(jsonEscape('a"b\\c\u0001'), 'a\\"b\\\\c\\u0001');
  });
});
