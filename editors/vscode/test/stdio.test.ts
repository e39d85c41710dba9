// The REAL Python server, started with exactly the command the extension builds, read through
// vscode-jsonrpc's StreamMessageReader (the reader VS Code uses): one stray byte on the server's
// stdout is an error here, as it would be in VS Code.
import * as assert from 'node:assert/strict';
import { ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import {
  MessageConnection,
  StreamMessageReader,
  StreamMessageWriter,
  createMessageConnection,
} from 'vscode-jsonrpc/node';

import { nodeProbes } from '../src/probe';
import { ServerCommand, resolveServerCommand } from '../src/serverCommand';
import { contributedKeys, serverSettings } from '../src/settings';
import { STATUS_NOTIFICATION } from '../src/status-notification';
import { EXTENSION_ROOT, PYTHON, tempDir, waitFor } from './helpers';
import { assertArgumentsFit, assertFits, commandSchema } from './schema';

const SAMPLE = 'import os\n\n\ndef f(x):\n    if x == None:\n        return 1\n';

/** What VS Code 1.8x announces, trimmed to what matters to Gantry. */
const VSCODE_CAPABILITIES = {
  workspace: {
    applyEdit: true,
    workspaceEdit: { documentChanges: true, resourceOperations: ['create', 'rename', 'delete'], failureHandling: 'textOnlyTransactional', normalizesLineEndings: true, changeAnnotationSupport: { groupsOnLabel: true } },
    configuration: true,
    didChangeConfiguration: { dynamicRegistration: true },
    didChangeWatchedFiles: { dynamicRegistration: true, relativePatternSupport: true },
    executeCommand: { dynamicRegistration: true },
    workspaceFolders: true,
    workDoneProgress: true,
  },
  textDocument: {
    synchronization: { dynamicRegistration: true, willSave: true, willSaveWaitUntil: true, didSave: true },
    publishDiagnostics: { relatedInformation: true, versionSupport: false, tagSupport: { valueSet: [1, 2] }, codeDescriptionSupport: true, dataSupport: true },
    codeAction: {
      dynamicRegistration: true,
      isPreferredSupport: true,
      disabledSupport: true,
      dataSupport: true,
      resolveSupport: { properties: ['edit'] },
      codeActionLiteralSupport: { codeActionKind: { valueSet: ['', 'quickfix', 'refactor', 'refactor.extract', 'refactor.inline', 'refactor.rewrite', 'source', 'source.organizeImports'] } },
      honorsChangeAnnotations: true,
    },
    codeLens: { dynamicRegistration: true },
    hover: { dynamicRegistration: true, contentFormat: ['markdown', 'plaintext'] },
  },
  window: { showMessage: { messageActionItem: { additionalPropertiesSupport: true } }, showDocument: { support: true }, workDoneProgress: true },
  general: { positionEncodings: ['utf-16'], markdown: { parser: 'marked', version: '1.1.0' } },
};

describe('the strict reader', () => {
  it('reports a stray byte before a frame as an error', async () => {
    const stream = new PassThrough();
    const reader = new StreamMessageReader(stream);
    const errors: Error[] = [];
    reader.onError((e) => errors.push(e));
    reader.listen(() => {});
    const body = '{"jsonrpc":"2.0","method":"x"}';
    stream.write(`hello\nContent-Length: ${body.length}\r\n\r\n${body}`);
    await waitFor(() => errors.length > 0, 2000, 'a framing error');
    reader.dispose();
  });
});

describe('the real server over stdio', () => {
  let server: ChildProcessWithoutNullStreams;
  let connection: MessageConnection;
  let command: ServerCommand;
  const root = tempDir('gantry-ws-');
  const state = tempDir('gantry-xdg-');
  const file = path.join(root, 'app.py');
  const uri = pathToFileURL(file).href;
  const errors: string[] = [];
  const shown: { type: number; message: string }[] = [];
  const statuses: any[] = [];
  const diagnostics: any[] = [];
  let stderr = '';
  let exit: Promise<number | null>;

  before(async () => {
    fs.writeFileSync(path.join(root, 'pyproject.toml'), '[tool.ruff.lint]\nselect = ["E", "F"]\n');
    fs.writeFileSync(file, SAMPLE);
    // The server runs in the workspace, which may name its modules as the standard library does.
    for (const name of ['types', 'json', 'asyncio', 'selectors']) {
      fs.writeFileSync(path.join(root, `${name}.py`), 'raise SystemExit("shadowed")\n');
    }
    const resolved = await resolveServerCommand({
      configured: [],
      trusted: true,
      python: PYTHON,
      env: process.env,
      platform: process.platform,
      probes: nodeProbes,
    });
    assert.ok(resolved.ok, `the extension finds the server: ${!resolved.ok && resolved.message}`);
    command = resolved;
    assert.equal(command.source, 'python');
    const env = { ...process.env, XDG_CACHE_HOME: path.join(state, 'cache'), XDG_DATA_HOME: path.join(state, 'data'), XDG_STATE_HOME: path.join(state, 'state') };
    // as vscode-languageclient spawns an Executable: command, args, cwd, env; stdio pipes
    server = spawn(command.command, command.args, { cwd: root, env });
    exit = new Promise((resolve) => server.on('exit', (code) => resolve(code)));
    server.stderr.on('data', (chunk) => (stderr += chunk));
    const reader = new StreamMessageReader(server.stdout);
    reader.onError((e) => errors.push(`reader: ${e.message}`));
    connection = createMessageConnection(reader, new StreamMessageWriter(server.stdin));
    connection.onError(([e]) => errors.push(`connection: ${e.message}`));
    // The extension's middleware answers workspace/configuration with the explicit settings only;
    // here every contributed setting is "set" to its default: the server must accept them all.
    const properties = JSON.parse(fs.readFileSync(path.join(EXTENSION_ROOT, 'package.json'), 'utf8')).contributes.configuration.properties;
    const settings = serverSettings(contributedKeys({ contributes: { configuration: { properties } } }), (key) => properties[key].default);
    connection.onRequest('workspace/configuration', (params: any) => params.items.map((item: any) => (item.section === 'gantry' ? settings : null)));
    connection.onRequest('window/workDoneProgress/create', () => null);
    connection.onRequest('client/registerCapability', () => null);
    connection.onRequest('workspace/applyEdit', () => ({ applied: true }));
    connection.onNotification('window/showMessage', (params: any) => shown.push(params));
    connection.onNotification(STATUS_NOTIFICATION, (params: any) => statuses.push(params));
    connection.onNotification('textDocument/publishDiagnostics', (params: any) => diagnostics.push(params));
    connection.listen();
  });

  after(async () => {
    connection?.dispose();
    if (server && server.exitCode === null) {
      server.kill('SIGKILL');
    }
  });

  const fail = (what: string) => `${what}\nstderr:\n${stderr}`;

  it('initializes, reviews a file, offers and resolves a fix, and exits cleanly', async () => {
    const init: any = await connection.sendRequest('initialize', {
      processId: process.pid,
      clientInfo: { name: 'Visual Studio Code', version: '1.82.0' },
      rootUri: pathToFileURL(root).href,
      workspaceFolders: [{ uri: pathToFileURL(root).href, name: 'ws' }],
      capabilities: VSCODE_CAPABILITIES,
      trace: 'off',
    });
    const caps = init.capabilities;
    assert.equal(caps.codeActionProvider.resolveProvider, true);
    for (const id of ['gantry.dismissFinding', 'gantry.reviewFile', 'gantry.reviewWorkspace', 'gantry.queueStatus', 'gantry.retryQueued', 'gantry.verifyFix']) {
      assert.ok(caps.executeCommandProvider.commands.includes(id), id);
    }
    for (const id of caps.executeCommandProvider.commands) {
      assert.ok(commandSchema(id), `${id} has a schema for its arguments`);
    }
    await connection.sendNotification('initialized', {});
    await connection.sendNotification('textDocument/didOpen', { textDocument: { uri, languageId: 'python', version: 1, text: SAMPLE } });
    await waitFor(() => diagnostics.some((d) => d.uri === uri && d.diagnostics.length > 0), 30000, fail('diagnostics'));
    const published = diagnostics.filter((d) => d.uri === uri && d.diagnostics.length > 0).pop();
    const unused = published.diagnostics.find((d: any) => d.code === 'F401');
    assert.ok(unused, fail(JSON.stringify(published)));
    assert.equal(unused.source, 'gantry');
    assert.ok(unused.codeDescription?.href, 'a link to the rule');
    assert.ok(unused.data?.fingerprint, 'a fingerprint for verdicts');
    for (const d of published.diagnostics) {
      assertFits('diagnostic-data.json', d.data);
    }
    assert.ok(published.diagnostics.some((d: any) => d.code === 'E711'));

    const actions: any[] = await connection.sendRequest('textDocument/codeAction', {
      textDocument: { uri },
      range: unused.range,
      context: { diagnostics: [unused], triggerKind: 1 },
    });
    for (const action of actions.filter((a) => a.command)) {
      assertArgumentsFit(action.command.command, action.command.arguments);
    }
    const fix = actions.find((a) => a.kind === 'quickfix' && a.diagnostics?.[0]?.code === 'F401' && !a.edit && a.data !== undefined);
    assert.ok(fix, `a lazy quick fix for F401: ${JSON.stringify(actions)}`);
    const resolved: any = await connection.sendRequest('codeAction/resolve', fix);
    const edits = resolved.edit?.documentChanges ?? Object.values(resolved.edit?.changes ?? {});
    assert.ok(JSON.stringify(edits).includes(uri) || resolved.edit?.changes?.[uri], `an edit of the file: ${JSON.stringify(resolved)}`);

    assertArgumentsFit('gantry.queueStatus', []);
    const queue: any = await connection.sendRequest('workspace/executeCommand', { command: 'gantry.queueStatus', arguments: [] });
    assert.ok(queue.state && Array.isArray(queue.jobs), JSON.stringify(queue));

    await waitFor(() => statuses.some((s) => s.state === 'ready'), 30000, fail('gantry/status ready'));
    statuses.forEach((status) => assertFits('status.json', status));

    await connection.sendRequest('shutdown');
    await connection.sendNotification('exit');
    assert.equal(await exit, 0, fail('exit code'));
    assert.deepEqual(errors, [], fail('no framing errors'));
    assert.deepEqual(shown, [], fail('the contributed defaults are valid settings: no messages'));
  });
});
