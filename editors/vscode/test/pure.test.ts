// The pure modules: PATH lookup and the probes, status -> status bar, settings -> server, queue.
// (Which server is started, and in which order: serverCommand.test.ts.)
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';

import { fileState, gantryVersion, isExecutable, nodeProbes, pythonHasGantry } from '../src/probe';
import { queueItems, queueTitle } from '../src/queue';
import { makeWhich } from '../src/serverCommand';
import { contributedKeys, explicitValue, needsRestart, restrictedKeys, serverOffers, serverSettings } from '../src/settings';
import { statusView } from '../src/status';
import { EXTENSION_ROOT, PYTHON, binDir, tempDir } from './helpers';
import { assertFits, commandSchema, loadSchema, problems } from './schema';

describe('makeWhich', () => {
  it('finds executables on PATH and checks explicit paths', () => {
    const dir = binDir('gantry');
    const w = makeWhich({ PATH: `/nonexistent:${dir}` }, 'linux', isExecutable);
    assert.equal(w('gantry'), path.join(dir, 'gantry'));
    assert.equal(w('missing'), undefined);
    assert.equal(w(path.join(dir, 'gantry')), path.join(dir, 'gantry'));
    assert.equal(w(path.join(dir, 'other')), undefined);
    fs.chmodSync(path.join(dir, 'gantry'), 0o644);
    assert.equal(w('gantry'), undefined, 'not executable');
  });

  it('skips relative PATH entries: they would resolve in the workspace, the server\'s directory', () => {
    const dir = binDir('gantry');
    const checked: string[] = [];
    const w = makeWhich({ PATH: `.::bin:${dir}` }, 'linux', (f) => (checked.push(f), isExecutable(f)));
    assert.equal(w('gantry'), path.join(dir, 'gantry'));
    assert.deepEqual(checked, [path.join(dir, 'gantry')]);
    assert.equal(makeWhich({ PATH: '.;bin', PATHEXT: '.EXE' }, 'win32', () => true)('gantry'), undefined);
  });

  it('tries PATHEXT on Windows', () => {
    const w = makeWhich({ PATH: 'C:\\bin', PATHEXT: '.EXE;.CMD' }, 'win32', (f) => f.endsWith('gantry.CMD'));
    assert.equal(w('gantry'), 'C:\\bin\\gantry.CMD');
  });
});

describe('the probes', () => {
  it('fileState tells missing, not executable and executable apart; a directory is no program', () => {
    const dir = binDir('gantry');
    const file = path.join(dir, 'gantry');
    assert.equal(fileState(file), 'executable');
    assert.equal(fileState(path.join(dir, 'nope')), 'missing');
    assert.equal(fileState(dir), 'missing');
    fs.chmodSync(file, 0o644);
    assert.equal(fileState(file), 'not-executable');
    assert.equal(isExecutable(file), false);
  });

  it("gantryVersion accepts Gantry's `gantry --version` only", async () => {
    assert.deepEqual(await gantryVersion(path.join(binDir('gantry'), 'gantry')), { ok: true, version: 'gantry 0.0.0-test' });
    const other = path.join(tempDir(), 'gantry');
    fs.writeFileSync(other, '#!/bin/sh\necho "gantry, version 2.1.0"\n', { mode: 0o755 });
    const verdict = await gantryVersion(other);
    assert.ok(!verdict.ok);
    assert.match(verdict.why, /answered "gantry, version 2\.1\.0": not Gantry's gantry/);
    const failing = await gantryVersion(path.join(binDir('gantry', 3), 'gantry'));
    assert.ok(!failing.ok);
    assert.match(failing.why, /failed/);
    const hung = path.join(tempDir(), 'gantry');
    fs.writeFileSync(hung, '#!/bin/sh\nexec sleep 5\n', { mode: 0o755 });
    const slow = await gantryVersion(hung, 200);
    assert.ok(!slow.ok);
    assert.match(slow.why, /did not answer within 0\.2 s/);
  });

  it('realpath follows links and listDir lists, both quiet on failure', () => {
    const dir = tempDir();
    const target = path.join(binDir('gantry'), 'gantry');
    fs.symlinkSync(target, path.join(dir, 'link'));
    assert.equal(nodeProbes.realpath(path.join(dir, 'link')), fs.realpathSync(target));
    assert.equal(nodeProbes.realpath('/nonexistent/x'), '/nonexistent/x');
    assert.deepEqual(nodeProbes.listDir(dir), ['link']);
    assert.deepEqual(nodeProbes.listDir('/nonexistent'), []);
  });
});

describe('pythonHasGantry', () => {
  it('is true for the repository interpreter and false for one without Gantry', async () => {
    assert.equal(await pythonHasGantry(PYTHON), true, `${PYTHON} should have lsp_server`);
    assert.equal(await pythonHasGantry(path.join(binDir('python', 1), 'python')), false);
    assert.equal(await pythonHasGantry('/nonexistent/python'), false);
  });

  it('cannot be answered by what lies in its working directory', async () => {
    const dir = tempDir('gantry-cwd-');
    fs.writeFileSync(path.join(dir, 'importlib.py'), 'raise SystemExit("shadowed")\n');
    const cwd = process.cwd();
    process.chdir(dir);
    try {
      assert.equal(await pythonHasGantry(PYTHON), true);
    } finally {
      process.chdir(cwd);
    }
  });
});

describe('statusView', () => {
  const counts = { documents: 2, reviewing: 0, indexing: 0, findings: 5, queued: 0, parked: 0, dead: 0, runningLocally: 0 };
  const view = (state: string, extra: object = {}, remotes: Record<string, string> = {}) => {
    const status = { state, message: 'm', counts: { ...counts, ...extra }, remotes };
    assertFits('status.json', status);
    return statusView('running', status);
  };

  it('names each state', () => {
    assert.equal(view('ready').text, '$(check) Gantry');
    assert.equal(view('busy', { reviewing: 2 }).text, '$(sync~spin) Gantry: reviewing');
    assert.equal(view('busy', { indexing: 1 }).text, '$(sync~spin) Gantry: indexing');
    assert.equal(view('queued', { queued: 3 }).text, '$(clock) Gantry: 3 queued');
    assert.equal(view('degraded', { runningLocally: 1, queued: 1 }, { gw: 'down' }).text, '$(warning) Gantry: remote down, running locally');
    assert.equal(view('offline', { queued: 4 }, { gw: 'down' }).text, '$(warning) Gantry: remote down, 4 queued');
    assert.equal(view('degraded').text, '$(warning) Gantry: degraded');
    assert.equal(view('degraded').level, 'warning');
    assert.equal(view('ready').level, 'normal');
  });

  it('has a tooltip with remote health and queue depth', () => {
    const tooltip = view('queued', { queued: 3, parked: 1, dead: 2 }, { 'gpu-box': 'up', gateway: 'probing' }).tooltip;
    assert.equal(
      tooltip,
      [
        'Gantry: m',
        'Remotes: gpu-box up, gateway probing',
        'Queue: 3 queued, 1 parked, 2 dead',
        'Findings: 5 in 2 open files',
        'Click to show the queue.',
      ].join('\n'),
    );
    assert.match(view('ready').tooltip, /Remotes: none configured/);
  });

  it('covers the client phases', () => {
    assert.equal(statusView('starting').text, '$(sync~spin) Gantry');
    assert.equal(statusView('running').text, '$(sync~spin) Gantry', 'running, no status yet');
    assert.deepEqual([statusView('stopped').text, statusView('stopped').level], ['$(error) Gantry: stopped', 'error']);
    const missing = statusView('missing', undefined, 'Gantry: not found. pip install gantry-lsp');
    assert.equal(missing.text, '$(error) Gantry: server not found');
    assert.match(missing.tooltip, /pip install gantry-lsp/);
  });
});

describe("the server's schemas", () => {
  it('catch fixtures that drifted from what the server sends and accepts', () => {
    const status = loadSchema('status.json');
    const counts = { documents: 0, reviewing: 0, indexing: 0, findings: 0, queued: 0, parked: 0, dead: 0, runningLocally: 0 };
    assert.deepEqual(problems(status, { state: 'ready', message: 'Ready', counts, remotes: { gpu: 'up' } }), []);
    assert.deepEqual(problems(status, { state: 'sleepy', message: 'm', counts, remotes: {} }), [
      '$.state: expected one of ["ready","busy","queued","degraded","offline"], got "sleepy"',
    ]);
    assert.deepEqual(problems(status, { state: 'ready', message: 'm', counts: { ...counts, running_locally: 1 }, remotes: { gpu: 'gone' } }), [
      '$.counts: running_locally is not expected',
      '$.remotes.gpu: expected one of ["up","down","probing"], got "gone"',
    ]);
    assert.deepEqual(problems(status, { state: 'ready', counts: { ...counts, documents: 1.5 }, remotes: {} }), [
      '$: message is missing',
      '$.counts.documents: expected integer, got number',
    ]);
    const dismiss = commandSchema('gantry.dismissFinding')!;
    assert.deepEqual(problems(dismiss, [{ uri: 'file:///a.py', fingerprint: 'f', verdict: 'false_positive' }]), []);
    assert.deepEqual(problems(dismiss, [{ uri: 'file:///a.py', fingerprint: 'f', verdict: 'nope' }]), [
      '$[0].verdict: expected one of ["dismissed","false_positive"], got "nope"',
    ]);
    assert.deepEqual(problems(dismiss, []), ['$: fewer than 1 items']);
    const data = loadSchema('diagnostic-data.json');
    assert.deepEqual(problems(data, { fingerprint: 'f', fix: null, provenance: { engine: 'ruff' }, cell: 2 }), []);
    assert.deepEqual(problems(data, { fingerprint: 'f', fix: { message: 'm' }, provenance: { engine: 'ruff' } }), [
      '$.fix: {"message":"m"} fits none of its types',
    ]);
  });
});

describe('settings', () => {
  const packageJSON = JSON.parse(fs.readFileSync(path.join(EXTENSION_ROOT, 'package.json'), 'utf8'));
  const keys = contributedKeys(packageJSON);

  it('contributes a setting for everything the server reads', () => {
    for (const key of [
      'gantry.store', 'gantry.maxFileSizeKb', 'gantry.logLevel', 'gantry.ruff.enabled', 'gantry.ruff.path',
      'gantry.ruff.select', 'gantry.ruff.extendSelect', 'gantry.ruff.ignore', 'gantry.severity',
      'gantry.index.enabled', 'gantry.index.exclude', 'gantry.inference.endpoints', 'gantry.inference.privacy',
      'gantry.inference.exclude', 'gantry.inference.contextBudget', 'gantry.inference.minConfidence',
      'gantry.inference.maxPerUnit',
      'gantry.execution.gateway', 'gantry.execution.gateways', 'gantry.execution.localFallback', 'gantry.execution.unsandboxed',
      'gantry.execution.queue', 'gantry.execution.maxConcurrency', 'gantry.server.command', 'gantry.trace.server',
      'gantry.testgen.budgetSeconds', 'gantry.testgen.reruns', 'gantry.testgen.modelRounds',
      'gantry.testgen.modelTokens', 'gantry.testgen.contextBudget', 'gantry.testgen.answerTokens', 'gantry.testgen.gpuPaths',
    ]) {
      assert.ok(keys.includes(key), key);
    }
    const props = packageJSON.contributes.configuration.properties;
    for (const key of keys) {
      assert.ok(props[key].description || props[key].markdownDescription, `${key} has a description`);
      assert.ok('default' in props[key], `${key} has a default`);
      assert.ok(props[key].type, `${key} has a type`);
    }
  });

  it('never holds a secret: keys and tokens are named by environment variable or file', () => {
    const props = packageJSON.contributes.configuration.properties;
    const endpoint = props['gantry.inference.endpoints'].items;
    assert.equal(endpoint.additionalProperties, false);
    assert.deepEqual(
      Object.keys(endpoint.properties).filter((k) => /key|^token|secret|password/i.test(k)),
      ['apiKeyEnv', 'apiKeyFile'],
    );
    for (const gateway of [props['gantry.execution.gateway'], props['gantry.execution.gateways'].items]) {
      assert.equal(gateway.additionalProperties, false);
      assert.deepEqual(Object.keys(gateway.properties).filter((k) => /token/i.test(k)), ['tokenEnv', 'tokenFile']);
    }
    for (const key of ['gantry.inference.endpoints', 'gantry.execution.gateway', 'gantry.execution.gateways']) {
      assert.match(props[key].markdownDescription, /Secrets are never settings/);
    }
  });

  it('restricts every setting that names a program, a destination, a credential or a file, or weakens isolation, to user settings', () => {
    // Judged by the setting's own name and the names of its fields, not by the list under test.
    const kinds: [RegExp, string][] = [
      [/command$|path$/i, 'names a program'],
      [/url$/i, 'names a network destination'],
      [/Env$|File$/, 'names a credential source'],
      [/^(store|queue)$/, 'names a file'],
      [/^(unsandboxed|privacy)$/, 'weakens isolation or privacy'],
    ];
    const names = (schema: any): string[] =>
      Object.entries({ ...schema?.properties, ...schema?.items?.properties }).flatMap(([name, sub]) => [name, ...names(sub)]);
    const props = packageJSON.contributes.configuration.properties;
    const restricted = restrictedKeys(packageJSON);
    assert.equal(packageJSON.capabilities.untrustedWorkspaces.supported, 'limited');
    assert.ok(packageJSON.capabilities.untrustedWorkspaces.description);
    for (const key of keys) {
      const why = kinds.find(([pattern]) => [key.split('.').pop()!, ...names(props[key])].some((n) => pattern.test(n)))?.[1];
      if (why) {
        assert.ok(restricted.has(key), `${key} ${why}: it belongs in restrictedConfigurations`);
        assert.equal(props[key].scope, 'machine', `${key} ${why}: it must be machine-scoped`);
        assert.match(props[key].description ?? props[key].markdownDescription, /User settings only/);
      } else {
        assert.ok(!restricted.has(key), `${key} is tuning: a workspace may set it`);
        assert.notEqual(props[key].scope, 'machine', `${key} is tuning: a workspace may set it`);
      }
    }
    for (const key of restricted) {
      assert.ok(keys.includes(key), `restrictedConfigurations names ${key}, which is no setting`);
    }
    for (const key of ['gantry.server.command', 'gantry.ruff.path', 'gantry.execution.gateway', 'gantry.inference.endpoints']) {
      assert.ok(restricted.has(key), key);
    }
    const generate = packageJSON.contributes.commands.find((c: any) => c.command === 'gantry.client.generateTests');
    assert.equal(generate.enablement, 'isWorkspaceTrusted', "generated tests run the project's code");
  });

  it('sends only explicit values, nested, without client-only settings', () => {
    const values: Record<string, unknown> = {
      'gantry.server.command': ['x'],
      'gantry.trace.server': 'verbose',
      'gantry.ruff.select': ['E'],
      'gantry.ruff.enabled': false,
      'gantry.severity': { E: 'info' },
      'gantry.store': null,
    };
    assert.deepEqual(serverSettings(keys, (k) => values[k]), {
      ruff: { select: ['E'], enabled: false },
      severity: { E: 'info' },
      store: null,
    });
    assert.deepEqual(serverSettings(keys, () => undefined), {});
  });

  it('takes the most specific explicit value, or the user\'s only', () => {
    assert.equal(explicitValue({ globalValue: 1, workspaceValue: 2, workspaceFolderValue: 3 }), 3);
    assert.equal(explicitValue({ globalValue: 1, workspaceValue: 2, workspaceFolderValue: 3 }, true), 1);
    assert.equal(explicitValue({ workspaceValue: 2 }, true), undefined);
    assert.equal(explicitValue({ globalValue: 1, workspaceValue: 2 }), 2);
    assert.equal(explicitValue({ globalValue: 1 }), 1);
    assert.equal(explicitValue({}), undefined);
    assert.equal(explicitValue(undefined), undefined);
  });

  it('restarts for start-up settings only', () => {
    const affects = (changed: string) => (s: string) => changed === s || changed.startsWith(s + '.');
    assert.ok(needsRestart(affects('gantry.server.command')));
    assert.ok(needsRestart(affects('gantry.execution.gateway')));
    assert.ok(needsRestart(affects('gantry.inference.endpoints')));
    assert.ok(needsRestart(affects('gantry.store')));
    assert.ok(!needsRestart(affects('gantry.ruff.select')));
    assert.ok(!needsRestart(affects('gantry.severity')));
    assert.ok(!needsRestart(affects('gantry.trace.server')), 'the client applies trace itself');
    assert.ok(!needsRestart(affects('editor.fontSize')));
  });

  it('knows whether the server offers a command', () => {
    assert.ok(serverOffers({ executeCommandProvider: { commands: ['gantry.generateTests'] } }, 'gantry.generateTests'));
    assert.ok(!serverOffers({ executeCommandProvider: { commands: ['gantry.reviewFile'] } }, 'gantry.generateTests'));
    assert.ok(!serverOffers(undefined, 'gantry.generateTests'));
  });
});

describe('queueItems', () => {
  it('lists jobs, marks dead and parked ones retryable, and offers retrying all', () => {
    const status = {
      state: 'queued',
      message: '2 waiting',
      jobs: [
        { id: 1, kind: 'inference', state: 'pending', attempts: 1, maxAttempts: 5, error: null, notBefore: null },
        { id: 2, kind: 'exec', state: 'dead', attempts: 5, maxAttempts: 5, error: 'gateway 500' },
        { id: 3, kind: 'inference', state: 'parked', attempts: 1, maxAttempts: 5, error: 'spend limit' },
      ],
    };
    const items = queueItems(status);
    assert.equal(queueTitle(status), 'Gantry queue: 2 waiting');
    assert.deepEqual(items.map((i) => [i.action, i.jobId]), [
      ['retryAll', undefined],
      ['none', 1],
      ['retryOne', 2],
      ['retryOne', 3],
    ]);
    assert.equal(items[2].label, '$(error) #2 exec');
    assert.equal(items[2].description, 'dead · attempt 5/5');
    assert.match(items[2].detail!, /gateway 500 · Choose to retry it\./);
    assert.deepEqual(queueItems({ state: 'ready', jobs: [] }).map((i) => i.label), ['$(check) The queue is empty']);
  });
});
