// activate() against a fake `vscode` module and a fake language client: which command starts the
// server, how `gantry/status` drives the status bar, and the one message when no server exists.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';

import { FakeEmitter, hookModules, makeLanguageClientModule, makeVscode } from './fakes';
import { EXTENSION_ROOT, PYTHON, binDir, tempDir, waitFor, writeScript } from './helpers';
import { assertArgumentsFit, assertFits, commandSchema } from './schema';

const packageJSON = require(path.join(EXTENSION_ROOT, 'package.json'));
const SERVER_COMMANDS = [
  'gantry.dismissFinding',
  'gantry.reviewFile',
  'gantry.reviewWorkspace',
  'gantry.queueStatus',
  'gantry.retryQueued',
  'gantry.verifyFix',
  'gantry.generateTests',
  'gantry.addExpectedFailure',
];

interface Setup {
  settings?: Record<string, unknown>;
  workspaceSettings?: Record<string, unknown>;
  trusted?: boolean;
  folder?: string;
  path?: string;
  home?: string;
  python?: string;
}

function load(setup: Setup = {}) {
  const folder = setup.folder ?? tempDir();
  const fake = makeVscode(setup.settings ?? {}, folder, { settings: setup.workspaceSettings, trusted: setup.trusted });
  const lc = makeLanguageClientModule();
  const interpreterChanged = new FakeEmitter<unknown>();
  if (setup.python) {
    const changed = interpreterChanged;
    const python = setup.python;
    (fake.vscode.extensions as any).getExtension = (id: string) =>
      id === 'ms-python.python'
        ? {
            isActive: true,
            exports: {
              environments: {
                getActiveEnvironmentPath: () => ({ id: python, path: python }),
                resolveEnvironment: async () => ({ executable: { uri: { fsPath: python } } }),
                onDidChangeActiveEnvironmentPath: changed.event,
              },
            },
          }
        : undefined;
  }
  const unhook = hookModules({ vscode: fake.vscode, 'vscode-languageclient/node': lc.module });
  const modulePath = require.resolve('../src/extension');
  delete require.cache[modulePath];
  const extension = require(modulePath);
  const context = { subscriptions: [] as { dispose(): unknown }[], extension: { packageJSON } };
  process.env.PATH = setup.path ?? tempDir('gantry-empty-path-');
  // The user's own installs are looked for in the home directory: a fresh one per test.
  process.env.HOME = setup.home ?? tempDir('gantry-home-');
  for (const name of ['PIPX_HOME', 'PIPX_BIN_DIR', 'XDG_DATA_HOME']) {
    delete process.env[name];
  }
  return { fake, lc, extension, context, folder, unhook, commands: fake.commands, interpreterChanged };
}

describe('activate()', () => {
  const savedEnv = { ...process.env };
  let loaded: ReturnType<typeof load> | undefined;
  const start = async (setup: Setup = {}) => {
    loaded = load(setup);
    await loaded.extension.activate(loaded.context);
    return loaded;
  };
  const finish = async () => {
    if (loaded) {
      assert.deepEqual(loaded.lc.contractProblems, [], "what the fake server sent, or the extension sent it, fits the server's schemas");
      await loaded.extension.deactivate();
      loaded.context.subscriptions.forEach((d) => d.dispose());
      loaded.unhook();
      loaded = undefined;
    }
  };
  beforeEach(() => (loaded = undefined));
  afterEach(async () => {
    await finish();
    for (const name of ['PATH', 'HOME', 'PIPX_HOME', 'PIPX_BIN_DIR', 'XDG_DATA_HOME']) {
      if (savedEnv[name] === undefined) {
        delete process.env[name];
      } else {
        process.env[name] = savedEnv[name];
      }
    }
  });

  it('starts `gantry serve` from PATH when nothing is configured', async () => {
    const bin = binDir('gantry');
    const { lc, fake } = await start({ path: bin });
    assert.equal(lc.clients.length, 1);
    const client = lc.clients[0];
    assert.equal(client.id, 'gantry');
    assert.deepEqual(client.serverOptions.command, path.join(bin, 'gantry'));
    assert.deepEqual(client.serverOptions.args, ['serve']);
    assert.ok(client.started);
    const languages = ['python', 'javascript', 'javascriptreact', 'typescript', 'typescriptreact', 'go', 'rust'];
    assert.deepEqual(
      client.clientOptions.documentSelector,
      languages.map((language) => ({ scheme: 'file', language })),
    );
    assert.equal(client.clientOptions.revealOutputChannelOn, 4, 'the output channel never pops up');
    assert.deepEqual(fake.recorded.errors, []);
  });

  it('prefers the gantry.server.command setting', async () => {
    const bin = binDir('my-gantry');
    const { lc } = await start({
      path: binDir('gantry'),
      settings: { 'gantry.server.command': [path.join(bin, 'my-gantry'), 'serve', '--flag'] },
    });
    assert.equal(lc.clients[0].serverOptions.command, path.join(bin, 'my-gantry'));
    assert.deepEqual(lc.clients[0].serverOptions.args, ['serve', '--flag']);
  });

  it("uses the Python extension's interpreter when Gantry is installed in it", async () => {
    const { lc } = await start({ path: binDir('gantry'), python: PYTHON });
    assert.equal(lc.clients[0].serverOptions.command, PYTHON);
    assert.deepEqual(lc.clients[0].serverOptions.args, ['-P', '-m', 'lsp_server', 'serve']);
  });

  it('restarts when the Python extension selects another interpreter', async () => {
    const { lc, interpreterChanged } = await start({ path: binDir('gantry'), python: PYTHON });
    await waitFor(() => interpreterChanged.listeners.length === 1, 2000, 'the extension to listen');
    interpreterChanged.fire({ id: 'other', path: PYTHON });
    await waitFor(() => lc.clients.length === 2 && lc.clients[1].started, 3000, 'a restart');
    assert.equal(lc.clients[1].serverOptions.command, PYTHON);
  });

  it("falls back to PATH when the interpreter lacks Gantry", async () => {
    const bin = binDir('gantry');
    const noGantry = path.join(binDir('python3', 1), 'python3'); // exits 1: no Gantry
    const { lc } = await start({ path: bin, python: noGantry });
    assert.equal(lc.clients[0].serverOptions.command, path.join(bin, 'gantry'));
  });

  it("finds Gantry in the workspace's .venv when no PATH the extension host sees has it, and says so", async () => {
    // The reported case: Gantry in a virtualenv that is on the user's shell PATH, not on the PATH
    // code-server's extension host was started with.
    const folder = tempDir('gantry-ws-');
    const gantry = writeScript(path.join(folder, '.venv', 'bin', 'gantry'), `[ "$1" = --version ] && echo 'gantry 0.1.0'`);
    const { lc, fake } = await start({ folder });
    assert.equal(lc.clients[0].serverOptions.command, gantry);
    assert.deepEqual(lc.clients[0].serverOptions.args, ['serve']);
    assert.deepEqual(fake.recorded.errors, []);
    const log = fake.outputLines.join('\n');
    assert.match(log, /Looking for the server \(workspace trusted\)/);
    assert.match(log, /Passed over gantry\.server\.command: not found \(not set\)/);
    assert.ok(log.includes(`Starting the server: ${gantry} serve (gantry 0.1.0, from the workspace's .venv)`), log);
  });

  it('takes ~/.local/bin (pipx) before PATH, and pipx\'s own environment when the link is missing', async () => {
    const home = tempDir('gantry-home-');
    const local = writeScript(path.join(home, '.local', 'bin', 'gantry'), `[ "$1" = --version ] && echo 'gantry 0.1.0'`);
    let { lc } = await start({ home, path: binDir('gantry') });
    assert.equal(lc.clients[0].serverOptions.command, local);
    await finish();
    fs.rmSync(local);
    const pipx = writeScript(
      path.join(home, '.local', 'pipx', 'venvs', 'gantry-lsp', 'bin', 'gantry'),
      `[ "$1" = --version ] && echo 'gantry 0.1.0'`,
    );
    ({ lc } = await start({ home, path: binDir('gantry') }));
    assert.equal(lc.clients[0].serverOptions.command, pipx);
  });

  it('passes over another program named gantry on PATH for the next one', async () => {
    const other = binDir('gantry');
    writeScript(path.join(other, 'gantry'), `echo 'gantry, version 2.0'`);
    const ours = binDir('gantry');
    const { lc, fake } = await start({ path: `${other}:${ours}` });
    assert.equal(lc.clients[0].serverOptions.command, path.join(ours, 'gantry'));
    assert.ok(fake.outputLines.some((l) => l.includes(`Passed over PATH (${path.join(other, 'gantry')}): probe failed`)));
  });

  it("in an untrusted workspace neither reads nor runs its .venv or venv, and takes the user's pipx install", async () => {
    const folder = tempDir('gantry-hostile-');
    const canary = path.join(folder, 'ran');
    for (const venv of ['.venv', 'venv']) {
      writeScript(path.join(folder, venv, 'bin', 'gantry'), `echo "$0" >> '${canary}'; echo 'gantry 0.1.0'`);
    }
    const home = tempDir('gantry-home-');
    const pipx = writeScript(path.join(home, '.local', 'share', 'pipx', 'venvs', 'gantry-lsp', 'bin', 'gantry'), `echo 'gantry 0.1.0'`);
    const { lc, fake } = await start({ folder, home, trusted: false });
    assert.equal(lc.clients[0].serverOptions.command, pipx);
    assert.ok(!fs.existsSync(canary), 'the workspace ran');
    const log = fake.outputLines.join('\n');
    assert.match(log, /Looking for the server \(workspace not trusted\)/);
    assert.ok(log.includes(`Passed over the workspace's .venv (${path.join(folder, '.venv', 'bin', 'gantry')}): untrusted workspace`), log);
    assert.ok(log.includes(`Starting the server: ${pipx} serve (gantry 0.1.0, from pipx's gantry-lsp environment)`), log);
    assert.deepEqual(fake.recorded.infos, [], 'nothing the user chose was passed over: no notice');
  });

  it('says once, clearly, how to install a missing server', async () => {
    const { lc, fake } = await start();
    assert.equal(lc.clients.length, 0, 'no client is started without a server');
    assert.equal(fake.recorded.errors.length, 1);
    const { message, items } = fake.recorded.errors[0];
    assert.match(message, /pip install gantry-lsp/);
    assert.match(message, /gantry\.server\.command/);
    assert.deepEqual(items, ['Open Settings', 'Show Output']);
    assert.match(fake.statusItems[0].text, /server not found/);
    assert.ok(fake.statusItems[0].backgroundColor, 'the item shows an error');
    assert.match(message, /Looked in: the workspace's \.venv \(not found\), the workspace's venv \(not found\), ~\/\.local\/bin \(not found\), pipx's gantry-lsp environment \(not found\), PATH \(not found\)/);
    // The output channel: every place, why each was passed over, and the PATH this window sees.
    const log = fake.outputLines.join('\n');
    assert.match(log, /Passed over the workspace's \.venv \(.*\/\.venv\/bin\/gantry\): not found/);
    assert.match(log, /Passed over ~\/\.local\/bin \(.*\/\.local\/bin\/gantry\): not found/);
    assert.match(log, /Passed over pipx's gantry-lsp environment \(.*\/\.local\/pipx\/venvs\/gantry-lsp\/bin\/gantry\): not found/);
    assert.match(log, /Passed over PATH: not found \(no gantry in the 1 directory on it\)/);
    assert.ok(log.includes(`PATH as VS Code's extension host sees it: ${process.env.PATH}`), log);
  });

  it('a missing configured command names the setting', async () => {
    const { fake } = await start({ path: binDir('gantry'), settings: { 'gantry.server.command': ['/nonexistent/gantry', 'serve'] } });
    assert.equal(fake.recorded.errors.length, 1);
    assert.match(fake.recorded.errors[0].message, /\/nonexistent\/gantry.*gantry\.server\.command/);
  });

  it('the status item follows gantry/status, and remote trouble never pops up', async () => {
    const { lc, fake } = await start({ path: binDir('gantry') });
    const item = fake.statusItems[0];
    assert.ok(item.visible);
    assert.equal(item.command, 'gantry.client.showQueue');
    const client = lc.clients[0];
    const counts = { documents: 1, reviewing: 0, indexing: 0, findings: 3, queued: 0, parked: 0, dead: 0, runningLocally: 0 };
    client.notify('gantry/status', { state: 'ready', message: 'Ready', counts, remotes: {} });
    assert.equal(item.text, '$(check) Gantry');
    assert.match(item.tooltip, /Findings: 3 in 1 open file/);
    client.notify('gantry/status', { state: 'busy', message: 'Reviewing 1 file', counts: { ...counts, reviewing: 1 }, remotes: {} });
    assert.equal(item.text, '$(sync~spin) Gantry: reviewing');
    client.notify('gantry/status', { state: 'queued', message: 'Remote: 4 queued', counts: { ...counts, queued: 4 }, remotes: { gpu: 'up' } });
    assert.equal(item.text, '$(clock) Gantry: 4 queued');
    client.notify('gantry/status', {
      state: 'degraded',
      message: 'Remote: gateway down',
      counts: { ...counts, queued: 2, runningLocally: 1 },
      remotes: { gateway: 'down', 'gpu-box': 'up' },
    });
    assert.equal(item.text, '$(warning) Gantry: remote down, running locally');
    assert.match(item.tooltip, /gateway down, gpu-box up/);
    assert.match(item.tooltip, /Queue: 2 queued, 0 parked, 0 dead, 1 running locally/);
    assert.equal(item.backgroundColor.id, 'statusBarItem.warningBackground');
    client.notify('gantry/status', { state: 'offline', message: 'Remote: all down', counts: { ...counts, queued: 7 }, remotes: { gpu: 'down' } });
    assert.equal(item.text, '$(warning) Gantry: remote down, 7 queued');
    assert.deepEqual([fake.recorded.errors, fake.recorded.warnings, fake.recorded.infos], [[], [], []]);
    client.stateChanged.fire({ oldState: 2, newState: 1 });
    assert.equal(item.text, '$(error) Gantry: stopped');
  });

  it('clicking the status item shows the queue and retries a dead job', async () => {
    const { lc, fake, commands } = await start({ path: binDir('gantry') });
    const client = lc.clients[0];
    lc.respond((method, params) => {
      if (params.command === 'gantry.queueStatus') {
        return {
          state: 'degraded',
          message: 'gateway down',
          remotes: { gateway: 'down' },
          counts: { pending: 1, dead: 1 },
          jobs: [
            { id: 1, key: 'k1', kind: 'exec', state: 'pending', attempts: 0, maxAttempts: 5, error: null, notBefore: null, updatedAt: 0 },
            { id: 2, key: 'k2', kind: 'inference', state: 'dead', attempts: 5, maxAttempts: 5, error: 'HTTP 500', notBefore: null, updatedAt: 0 },
          ],
        };
      }
      return { retried: 1 };
    });
    fake.answerQuickPick((items) => items.find((i: any) => i.jobId === 2));
    fake.answerMessage((_m, items) => (items.includes('Retry') ? 'Retry' : undefined));
    await commands.get(fake.statusItems[0].command)!();
    assert.equal(fake.recorded.quickPicks.length, 1);
    assert.match(fake.recorded.quickPicks[0].options.title, /gateway down/);
    assert.equal(fake.recorded.quickPicks[0].items.length, 2);
    assert.deepEqual(
      client.requests.map((r) => r.params),
      [
        { command: 'gantry.queueStatus', arguments: [] },
        { command: 'gantry.retryQueued', arguments: [{ id: 2 }] },
      ],
    );
    assert.ok(client.requests.every((r) => r.method === 'workspace/executeCommand'));
  });

  it('dismisses the chosen finding with the arguments the server expects', async () => {
    const { lc, fake, commands } = await start({ path: binDir('gantry') });
    const data = { fingerprint: 'fp-1', fix: null, provenance: { engine: 'ruff', version: '0.17.6' } };
    assertFits('diagnostic-data.json', data);
    const diagnostic = { source: 'gantry', code: 'F401', message: 'unused', range: { start: { line: 0 } }, data };
    (fake.vscode.languages as any).getDiagnostics = () => [diagnostic];
    (fake.vscode.window as any).activeTextEditor = {
      document: { uri: fake.vscode.Uri.file('/ws/app.py') },
      selection: { active: { line: 0, character: 0 } },
    };
    fake.answerQuickPick((items) => items[items.length - 1]);
    await commands.get('gantry.client.dismissFinding')!();
    assert.deepEqual(lc.clients[0].requests.map((r) => r.params), [
      { command: 'gantry.dismissFinding', arguments: [{ uri: 'file:///ws/app.py', fingerprint: 'fp-1', verdict: 'false_positive' }] },
    ]);
  });

  it('sends only commands the server has schemas for', () => {
    for (const id of SERVER_COMMANDS) {
      assert.ok(commandSchema(id) !== undefined, id);
    }
  });

  it('Generate Tests says plainly when the server does not offer it, and sends the cursor or the selection when it does', async () => {
    const { lc, fake, commands } = await start({ path: binDir('gantry') });
    await commands.get('gantry.client.generateTests')!();
    assert.equal(fake.recorded.infos.length, 1);
    assert.match(fake.recorded.infos[0], /not offered by this server/);
    assert.equal(lc.clients[0].requests.length, 0);

    lc.setCapabilities({ executeCommandProvider: { commands: [...SERVER_COMMANDS] } });
    await commands.get('gantry.client.restartServer')!();
    const client = lc.clients[lc.clients.length - 1];
    const cursor = { line: 3, character: 4 };
    (fake.vscode.window as any).activeTextEditor = {
      document: { uri: fake.vscode.Uri.file('/ws/app.py') },
      selection: { start: cursor, end: cursor, active: cursor },
    };
    await commands.get('gantry.client.generateTests')!();
    (fake.vscode.window as any).activeTextEditor.selection = {
      start: { line: 3, character: 0 },
      end: { line: 9, character: 0 },
      active: { line: 9, character: 0 },
    };
    await commands.get('gantry.client.generateTests')!();
    assert.deepEqual(client.requests.map((r) => r.params), [
      { command: 'gantry.generateTests', arguments: [{ uri: 'file:///ws/app.py', range: { start: cursor, end: cursor } }] },
      {
        command: 'gantry.generateTests',
        arguments: [{ uri: 'file:///ws/app.py', range: { start: { line: 3, character: 0 }, end: { line: 9, character: 0 } } }],
      },
    ]);
    for (const request of client.requests) {
      assertArgumentsFit('gantry.generateTests', (request.params as any).arguments);
    }
  });

  it('sends the server only the settings the user set, without the client-only ones', async () => {
    const { lc } = await start({
      path: binDir('gantry'),
      settings: {
        'gantry.trace.server': 'verbose',
        'gantry.maxFileSizeKb': 512,
        'gantry.ruff.extendSelect': ['B'],
        'gantry.execution.gateway': { url: 'http://gpu:8710', tokenEnv: 'TOKEN' },
      },
    });
    const middleware = lc.clients[0].clientOptions.middleware.workspace.configuration;
    const next = async (params: any) => params.items.map(() => ({ everything: true }));
    const result = await middleware({ items: [{ section: 'gantry' }, { section: 'python' }] }, undefined, next);
    assert.deepEqual(result, [
      { maxFileSizeKb: 512, ruff: { extendSelect: ['B'] }, execution: { gateway: { url: 'http://gpu:8710', tokenEnv: 'TOKEN' } } },
      { everything: true },
    ]);
  });

  it("never sends the workspace's restricted settings, trusted or not, nor VS Code's unfiltered copy", async () => {
    for (const trusted of [true, false]) {
      const { lc } = await start({
        path: binDir('gantry'),
        trusted,
        settings: { 'gantry.execution.gateway': { url: 'http://gpu:8710' }, 'gantry.severity': { E: 'info' } },
        workspaceSettings: {
          'gantry.ruff.extendSelect': ['B'],
          'gantry.severity': { E: 'error' },
          'gantry.execution.gateway': { url: 'http://attacker.example', tokenEnv: 'AWS_SECRET_ACCESS_KEY' },
          'gantry.inference.endpoints': [{ name: 'x', baseUrl: 'http://attacker.example', model: 'm', apiKeyFile: '~/.git-credentials' }],
          'gantry.inference.privacy': 'any',
          'gantry.ruff.path': './tools/ruff',
          'gantry.store': '~/.ssh/authorized_keys',
          'gantry.execution.queue': '~/.bashrc',
          'gantry.execution.unsandboxed': true,
        },
      });
      const client = lc.clients[lc.clients.length - 1];
      const { configuration, didChangeConfiguration } = client.clientOptions.middleware.workspace;
      const result = await configuration({ items: [{ section: 'gantry' }] }, undefined, async () => [null]);
      assert.deepEqual(result, [
        { ruff: { extendSelect: ['B'] }, severity: { E: 'error' }, execution: { gateway: { url: 'http://gpu:8710' } } },
      ], `trusted: ${trusted}`);
      const pushed: unknown[] = [];
      await didChangeConfiguration(['gantry'], async (sections: unknown) => void pushed.push(sections));
      assert.deepEqual(pushed, [undefined], 'the change is announced without settings: the server pulls them');
      await finish();
    }
  });

  it("in an untrusted workspace starts neither the workspace's interpreter nor a command it chose, and says so once", async () => {
    const folder = tempDir('gantry-hostile-');
    const canary = path.join(folder, 'ran');
    const venv = path.join(folder, '.venv', 'bin');
    fs.mkdirSync(venv, { recursive: true });
    for (const name of ['python', 'gantry']) {
      fs.writeFileSync(path.join(venv, name), `#!/bin/sh\necho "$0" >> '${canary}'\n`, { mode: 0o755 });
    }
    const bin = binDir('gantry');
    const { lc, fake, commands } = await start({
      folder,
      trusted: false,
      path: `.venv/bin:${bin}`,
      python: path.join(venv, 'python'),
      settings: { 'gantry.server.command': ['${workspaceFolder}/.venv/bin/gantry', 'serve'] },
    });
    assert.equal(lc.clients[0].serverOptions.command, path.join(bin, 'gantry'));
    assert.ok(!fs.existsSync(canary), `the workspace ran: ${fs.existsSync(canary) && fs.readFileSync(canary, 'utf8')}`);
    assert.equal(fake.recorded.infos.length, 1);
    assert.match(fake.recorded.infos[0], /not trusted.*\.venv\/bin\/gantry.*inside the workspace.*\.venv\/bin\/python/);
    await commands.get('gantry.client.restartServer')!();
    assert.equal(lc.clients.length, 2);
    assert.equal(fake.recorded.infos.length, 1, 'told once');

    // A workspace-level command is not even considered (machine scope), trusted or not.
    fake.vscode.workspace.isTrusted = true;
    fake.trustGranted.fire();
    await waitFor(() => lc.clients.length === 3 && lc.clients[2].started, 3000, 'a restart on trust');
    assert.equal(lc.clients[2].serverOptions.command, path.join(venv, 'gantry'), 'trusted: the user-level setting applies');
  });

  it('a workspace-level gantry.server.command is ignored, trusted or not', async () => {
    const bin = binDir('gantry');
    for (const trusted of [true, false]) {
      const { lc } = await start({ path: bin, trusted, workspaceSettings: { 'gantry.server.command': [path.join(binDir('evil'), 'evil'), 'serve'] } });
      assert.equal(lc.clients[0].serverOptions.command, path.join(bin, 'gantry'), `trusted: ${trusted}`);
      await finish();
    }
  });

  it('restarts once, debounced, when start-up settings change', async () => {
    const { lc, fake } = await start({ path: binDir('gantry') });
    const affects = (changed: string) => ({ affectsConfiguration: (s: string) => changed === s || changed.startsWith(s + '.') });
    fake.configChanged.fire(affects('gantry.ruff.select')); // live setting: no restart
    fake.configChanged.fire(affects('gantry.server.command'));
    fake.configChanged.fire(affects('gantry.execution.gateway'));
    await waitFor(() => lc.clients.length === 2 && lc.clients[1].started, 3000, 'a restart');
    await new Promise((r) => setTimeout(r, 700));
    assert.equal(lc.clients.length, 2, 'one restart for a burst of changes');
    assert.ok(lc.clients[0].stopped);
  });

  it('registers every palette command, and none of the ids the client registers for the server', async () => {
    const { commands } = await start({ path: binDir('gantry') });
    const contributed = packageJSON.contributes.commands.map((c: any) => c.command).sort();
    assert.deepEqual([...commands.keys()].sort(), contributed);
    for (const id of SERVER_COMMANDS) {
      assert.ok(!commands.has(id), `${id} belongs to the language client`);
    }
    for (const command of packageJSON.contributes.commands) {
      assert.equal(command.category, 'Gantry');
    }
  });
});
