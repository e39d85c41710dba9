// The esbuild bundle: one file that needs nothing but `vscode` and Node's own modules.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { builtinModules } from 'node:module';
import * as path from 'node:path';
import { it } from 'node:test';

import { hookModules, makeVscode } from './fakes';
import { EXTENSION_ROOT } from './helpers';

const BUNDLE = path.join(EXTENSION_ROOT, 'dist', 'extension.js');

it('requires only vscode and Node built-ins', () => {
  const source = fs.readFileSync(BUNDLE, 'utf8');
  const required = new Set([...source.matchAll(/\brequire\("([^"]+)"\)/g)].map((m) => m[1]));
  const builtins = new Set([...builtinModules, ...builtinModules.map((m) => `node:${m}`)]);
  const foreign = [...required].filter((name) => name !== 'vscode' && !builtins.has(name));
  assert.deepEqual(foreign, []);
  assert.ok(required.has('vscode'));
});

it('loads and exports activate and deactivate', () => {
  const fake = makeVscode({}, '/tmp');
  // The language client subclasses vscode classes at load time: any missing name is a class here.
  const vscode = new Proxy(fake.vscode as any, { get: (target, name) => (name in target ? target[name] : class {}) });
  const unhook = hookModules({ vscode });
  try {
    delete require.cache[BUNDLE];
    const extension = require(BUNDLE);
    assert.equal(typeof extension.activate, 'function');
    assert.equal(typeof extension.deactivate, 'function');
  } finally {
    unhook();
  }
});
