// Which server the extension starts, and in which order it looks: against a fake machine
// (makeProbes), so every file read and every program run is recorded.
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { describe, it } from 'node:test';

import { ResolveInputs, Resolved, ServerCommand, describeSkip, resolveServerCommand } from '../src/serverCommand';
import { FakeFile, makeProbes } from './fakes';

const HOME = '/home/me';
const WS = '/ws';
const LOCAL_BIN = '/home/me/.local/bin/gantry';
const PIPX_OLD = '/home/me/.local/pipx/venvs/gantry-lsp/bin/gantry';
const PIPX_NEW = '/home/me/.local/share/pipx/venvs/gantry-lsp/bin/gantry';

/** A trusted Linux workspace /ws, home /home/me, PATH /usr/local/bin:/usr/bin, unless told otherwise. */
function resolve(
  files: Record<string, FakeFile>,
  inputs: Partial<Omit<ResolveInputs, 'probes'>> = {},
  dirs: Record<string, string[]> = {},
) {
  const fake = makeProbes(files, dirs);
  const result = resolveServerCommand({
    configured: [],
    trusted: true,
    workspaceFolders: [WS],
    home: HOME,
    env: { PATH: '/usr/local/bin:/usr/bin' },
    platform: 'linux',
    ...inputs,
    probes: fake.probes,
  });
  return { fake, result };
}

function chosen(r: Resolved): ServerCommand {
  assert.ok(r.ok, `a server is found: ${!r.ok && r.message}`);
  return r;
}

const EVERYTHING: Record<string, FakeFile> = {
  '/venv/bin/python': 'python',
  '/ws/.venv/bin/gantry': 'gantry',
  '/ws/venv/bin/gantry': 'gantry',
  [LOCAL_BIN]: 'gantry',
  [PIPX_OLD]: 'gantry',
  '/usr/local/bin/gantry': 'gantry',
  '/opt/my/gantry': 'gantry',
};

describe('resolveServerCommand: the order', () => {
  it('the gantry.server.command setting wins, and nothing else is looked at or run', async () => {
    const { fake, result } = resolve(EVERYTHING, {
      configured: ['/opt/my/gantry', 'serve', '--tcp', '127.0.0.1:2087'],
      python: '/venv/bin/python',
    });
    assert.deepEqual(await result, {
      ok: true,
      command: '/opt/my/gantry',
      args: ['serve', '--tcp', '127.0.0.1:2087'],
      source: 'setting',
      description: '/opt/my/gantry serve --tcp 127.0.0.1:2087 (from the gantry.server.command setting)',
      skipped: [],
    });
    assert.deepEqual(fake.ran, []);
    assert.deepEqual(fake.looked, ['/opt/my/gantry']);
  });

  it("then the Python extension's interpreter, when Gantry is installed in it (-P -m lsp_server serve)", async () => {
    const { fake, result } = resolve(EVERYTHING, { python: '/venv/bin/python' });
    const r = chosen(await result);
    assert.deepEqual([r.command, r.args, r.source], ['/venv/bin/python', ['-P', '-m', 'lsp_server', 'serve'], 'python']);
    assert.deepEqual(fake.ran, ['/venv/bin/python']);
    assert.deepEqual(r.skipped.map(describeSkip), ['gantry.server.command: not found (not set)']);
  });

  it("then the workspace's .venv, then its venv, each verified", async () => {
    const files: Record<string, FakeFile> = { ...EVERYTHING, '/venv/bin/python': 'python-bare' };
    let r = chosen(await resolve(files, { python: '/venv/bin/python' }).result);
    assert.deepEqual([r.command, r.args, r.source], ['/ws/.venv/bin/gantry', ['serve'], 'workspace']);
    assert.match(r.description, /^\/ws\/\.venv\/bin\/gantry serve \(gantry 0\.1\.0, from the workspace's \.venv\)$/);
    assert.deepEqual(r.skipped.map(describeSkip), [
      'gantry.server.command: not found (not set)',
      "the Python extension's interpreter /venv/bin/python: probe failed (Gantry is not installed in it (lsp_server cannot be imported))",
    ]);

    const { fake, result } = resolve({ ...files, '/ws/.venv/bin/gantry': 'other' }, { python: '/venv/bin/python' });
    r = chosen(await result);
    assert.equal(r.command, '/ws/venv/bin/gantry');
    assert.deepEqual(fake.ran, ['/venv/bin/python', '/ws/.venv/bin/gantry', '/ws/venv/bin/gantry']);
    assert.match(describeSkip(r.skipped[2]), /^the workspace's \.venv \(\/ws\/\.venv\/bin\/gantry\): probe failed \(.*not Gantry's gantry\)$/);

    const { [`${WS}/.venv/bin/gantry`]: _, ...noDotVenv } = files;
    r = chosen(await resolve(noDotVenv).result);
    assert.equal(r.command, '/ws/venv/bin/gantry');
    assert.equal(describeSkip(r.skipped[2]), "the workspace's .venv (/ws/.venv/bin/gantry): not found");
  });

  it('each workspace folder in order', async () => {
    const r = chosen(await resolve({ '/second/venv/bin/gantry': 'gantry' }, { workspaceFolders: [WS, '/second'] }).result);
    assert.equal(r.command, '/second/venv/bin/gantry');
  });

  it('then ~/.local/bin (pipx, pip --user), then pipx\'s own gantry-lsp environment, then PATH', async () => {
    const files: Record<string, FakeFile> = { [LOCAL_BIN]: 'gantry', [PIPX_OLD]: 'gantry', '/usr/local/bin/gantry': 'gantry' };
    let r = chosen(await resolve(files).result);
    assert.deepEqual([r.command, r.source], [LOCAL_BIN, 'user']);
    assert.match(r.description, /from ~\/\.local\/bin\)$/);

    delete files[LOCAL_BIN];
    r = chosen(await resolve(files).result);
    assert.deepEqual([r.command, r.source], [PIPX_OLD, 'pipx']);
    assert.equal(describeSkip(r.skipped.at(-1)!), `pipx's gantry-lsp environment (${PIPX_NEW}): not found`, 'pipx >= 1.3 first');

    delete files[PIPX_OLD];
    r = chosen(await resolve(files).result);
    assert.deepEqual([r.command, r.source], ['/usr/local/bin/gantry', 'path']);
    assert.equal(r.description, '/usr/local/bin/gantry serve (gantry 0.1.0, from PATH)');
  });

  it('$PIPX_BIN_DIR, $PIPX_HOME and $XDG_DATA_HOME are where pipx puts it when they are set', async () => {
    const env = { PATH: '/usr/bin', PIPX_BIN_DIR: '/opt/pipx-bin', PIPX_HOME: '/opt/pipx', XDG_DATA_HOME: '/data' };
    const { fake, result } = resolve({}, { env });
    const r = await result;
    assert.ok(!r.ok);
    const order = fake.looked.filter((f) => f.endsWith('gantry'));
    assert.deepEqual(order, [
      '/ws/.venv/bin/gantry',
      '/ws/venv/bin/gantry',
      '/opt/pipx-bin/gantry',
      LOCAL_BIN,
      '/opt/pipx/venvs/gantry-lsp/bin/gantry',
      '/data/pipx/venvs/gantry-lsp/bin/gantry',
      PIPX_NEW,
      PIPX_OLD,
      '/usr/bin/gantry',
    ]);
    const found = chosen(await resolve({ '/opt/pipx/venvs/gantry-lsp/bin/gantry': 'gantry' }, { env }).result);
    assert.equal(found.command, '/opt/pipx/venvs/gantry-lsp/bin/gantry');
    const relative = resolve({}, { env: { PATH: '', PIPX_HOME: 'pipx', PIPX_BIN_DIR: '.' } });
    await relative.result;
    assert.ok(!relative.fake.looked.some((f) => !f.startsWith('/')), 'relative variables are ignored: they would resolve in the workspace');
  });

  it('PATH last: every gantry on it in order, another program of that name passed over', async () => {
    const { fake, result } = resolve({ '/usr/local/bin/gantry': 'other', '/usr/bin/gantry': 'gantry' });
    const r = chosen(await result);
    assert.equal(r.command, '/usr/bin/gantry');
    assert.deepEqual(fake.ran, ['/usr/local/bin/gantry', '/usr/bin/gantry']);
    assert.match(describeSkip(r.skipped.at(-1)!), /^PATH \(\/usr\/local\/bin\/gantry\): probe failed \(`gantry --version` answered/);
  });

  it('a candidate that is not executable is passed over, and says so', async () => {
    const r = chosen(await resolve({ [LOCAL_BIN]: 'noexec', '/usr/bin/gantry': 'gantry' }).result);
    assert.equal(r.command, '/usr/bin/gantry');
    assert.ok(r.skipped.map(describeSkip).includes(`~/.local/bin (${LOCAL_BIN}): not executable`));
  });

  it('a file found twice (~/.local/bin is usually on PATH) is tried once', async () => {
    const { fake, result } = resolve({ [LOCAL_BIN]: 'other' }, { env: { PATH: `/home/me/.local/bin:/usr/bin` } });
    assert.ok(!(await result).ok);
    assert.deepEqual(fake.ran, [LOCAL_BIN]);
  });

  it('none found: the clear message names where it looked; the list says why each was passed over', async () => {
    const { result } = resolve({ '/venv/bin/python': 'python-bare', '/usr/bin/gantry': 'other' }, { python: '/venv/bin/python' });
    const r = await result;
    assert.ok(!r.ok);
    assert.match(r.message, /^Gantry: the language server was not found\. Looked in: /);
    for (const place of [
      "the Python extension's interpreter /venv/bin/python (probe failed)",
      "the workspace's .venv (not found)",
      "the workspace's venv (not found)",
      '~/.local/bin (not found)',
      "pipx's gantry-lsp environment (not found)",
      'PATH (probe failed)',
    ]) {
      assert.ok(r.message.includes(place), `${place} in ${r.message}`);
    }
    assert.match(r.message, /pipx install gantry-lsp.*pip install gantry-lsp.*gantry\.server\.command/);
    assert.deepEqual(r.skipped.map(describeSkip), [
      'gantry.server.command: not found (not set)',
      "the Python extension's interpreter /venv/bin/python: probe failed (Gantry is not installed in it (lsp_server cannot be imported))",
      "the workspace's .venv (/ws/.venv/bin/gantry): not found",
      "the workspace's venv (/ws/venv/bin/gantry): not found",
      `~/.local/bin (${LOCAL_BIN}): not found`,
      `pipx's gantry-lsp environment (${PIPX_NEW}): not found`,
      `pipx's gantry-lsp environment (${PIPX_OLD}): not found`,
      "PATH (/usr/bin/gantry): probe failed (`gantry --version` answered \"gantry, version 2.0\": not Gantry's gantry)",
    ]);
    const empty = await resolve({}, { env: { PATH: '/usr/bin' } }).result;
    assert.ok(!empty.ok);
    assert.equal(describeSkip(empty.skipped.at(-1)!), 'PATH: not found (no gantry in the 1 directory on it)');
    assert.match(empty.message, /Looked in: the workspace's \.venv \(not found\)/, 'no interpreter: not worth a mention');
  });

  it('Windows paths: Scripts\\gantry.exe, pipx homes, pip --user per version, PATHEXT', async () => {
    const win = path.win32;
    const env = { Path: 'C:\\Tools;C:\\Python312\\Scripts', PATHEXT: '.EXE;.CMD', APPDATA: 'C:\\Users\\me\\AppData\\Roaming', LOCALAPPDATA: 'C:\\Users\\me\\AppData\\Local' };
    const roaming = 'C:\\Users\\me\\AppData\\Roaming\\Python';
    const { fake, result } = resolve({}, { platform: 'win32', env, home: 'C:\\Users\\me', workspaceFolders: ['C:\\ws'] }, { [roaming]: ['Python311', 'Python313', 'other'] });
    assert.ok(!(await result).ok);
    assert.deepEqual(fake.looked.filter((f) => /gantry/i.test(win.basename(f))), [
      'C:\\ws\\.venv\\Scripts\\gantry.exe',
      'C:\\ws\\venv\\Scripts\\gantry.exe',
      'C:\\Users\\me\\.local\\bin\\gantry.exe',
      `${roaming}\\Python313\\Scripts\\gantry.exe`,
      `${roaming}\\Python311\\Scripts\\gantry.exe`,
      'C:\\Users\\me\\pipx\\venvs\\gantry-lsp\\Scripts\\gantry.exe',
      'C:\\Users\\me\\.local\\pipx\\venvs\\gantry-lsp\\Scripts\\gantry.exe',
      'C:\\Users\\me\\AppData\\Local\\pipx\\pipx\\venvs\\gantry-lsp\\Scripts\\gantry.exe',
      'C:\\Tools\\gantry', 'C:\\Tools\\gantry.EXE', 'C:\\Tools\\gantry.CMD',
      'C:\\Python312\\Scripts\\gantry', 'C:\\Python312\\Scripts\\gantry.EXE', 'C:\\Python312\\Scripts\\gantry.CMD',
    ]);
    const r = chosen(await resolve({ 'C:\\ws\\.venv\\Scripts\\gantry.exe': 'gantry' }, { platform: 'win32', env, home: 'C:\\Users\\me', workspaceFolders: ['C:\\ws'] }).result);
    assert.deepEqual([r.command, r.args], ['C:\\ws\\.venv\\Scripts\\gantry.exe', ['serve']]);
  });

  it('macOS: pip --user scripts per Python version, and pipx\'s macOS home', async () => {
    const lib = '/Users/me/Library/Python';
    const r = chosen(
      await resolve({ [`${lib}/3.11/bin/gantry`]: 'gantry' }, { platform: 'darwin', home: '/Users/me', env: { PATH: '' } }, { [lib]: ['3.9', '3.12', '3.11'] }).result,
    );
    assert.equal(r.command, `${lib}/3.11/bin/gantry`);
    assert.ok(r.skipped.map(describeSkip).includes(`pip --user (3.12) (${lib}/3.12/bin/gantry): not found`), 'newest first');
    const none = resolve({}, { platform: 'darwin', home: '/Users/me', env: { PATH: '' } });
    await none.result;
    assert.ok(none.fake.looked.includes('/Users/me/Library/Application Support/pipx/venvs/gantry-lsp/bin/gantry'));
  });
});

describe('resolveServerCommand: the configured command', () => {
  it('expands ${workspaceFolder} and ~', async () => {
    const r = chosen(
      await resolve(
        { '/ws/.venv/bin/python': 'python' },
        { configured: ['${workspaceFolder}/.venv/bin/python', '-m', 'lsp_server', 'serve', '~/x'] },
      ).result,
    );
    assert.equal(r.command, '/ws/.venv/bin/python');
    assert.deepEqual(r.args, ['-m', 'lsp_server', 'serve', '/home/me/x']);
  });

  it('a bare name is looked up on PATH; a relative path is relative to the workspace folder', async () => {
    let r = chosen(await resolve({ '/usr/bin/gantry': 'gantry' }, { configured: ['gantry', 'serve'] }).result);
    assert.equal(r.command, '/usr/bin/gantry');
    r = chosen(await resolve({ '/ws/.venv/bin/gantry': 'gantry' }, { configured: ['.venv/bin/gantry', 'serve'] }).result);
    assert.equal(r.command, '/ws/.venv/bin/gantry');
  });

  it('rejects a malformed setting, and one that does not exist or cannot run, without trying others', async () => {
    for (const configured of ['gantry serve', [1, 2], ['']]) {
      const r = await resolve({ '/usr/bin/gantry': 'gantry' }, { configured }).result;
      assert.ok(!r.ok);
      assert.match(r.message, /must be a list of strings/);
    }
    const missing = resolve({ '/usr/bin/gantry': 'gantry' }, { configured: ['/nope/gantry'] });
    let r = await missing.result;
    assert.ok(!r.ok);
    assert.match(r.message, /`\/nope\/gantry` from `gantry.server.command` was not found/);
    assert.deepEqual(missing.fake.ran, [], 'an explicit choice is not silently replaced');
    r = await resolve({ '/opt/gantry': 'noexec' }, { configured: ['/opt/gantry', 'serve'] }).result;
    assert.ok(!r.ok);
    assert.match(r.message, /`\/opt\/gantry` from `gantry.server.command` is not executable/);
  });
});

describe('resolveServerCommand in a workspace VS Code does not trust', () => {
  const untrusted = { trusted: false };
  const underWs = (files: string[]) => files.filter((f) => f === WS || f.startsWith(WS + '/'));

  it("never looks at or runs the interpreter, .venv or venv; takes the user's own install and says why", async () => {
    const files: Record<string, FakeFile> = {
      '/ws/.venv/bin/python': 'python',
      '/ws/.venv/bin/gantry': 'gantry',
      '/ws/venv/bin/gantry': 'gantry',
      [LOCAL_BIN]: 'gantry',
    };
    const { fake, result } = resolve(files, { ...untrusted, python: '/ws/.venv/bin/python' });
    const r = chosen(await result);
    assert.deepEqual([r.command, r.source], [LOCAL_BIN, 'user']);
    assert.deepEqual(underWs(fake.looked), [], 'nothing in the workspace was read');
    assert.deepEqual(fake.ran, [LOCAL_BIN]);
    assert.deepEqual(r.skipped.map(describeSkip), [
      'gantry.server.command: not found (not set)',
      "the Python extension's interpreter /ws/.venv/bin/python: untrusted workspace (it may be the workspace's own; not run)",
      "the workspace's .venv (/ws/.venv/bin/gantry): untrusted workspace (not looked at)",
      "the workspace's venv (/ws/venv/bin/gantry): untrusted workspace (not looked at)",
    ]);
    assert.match(r.distrusted!, /not trusted.*\/ws\/\.venv\/bin\/python.*It uses \/home\/me\/\.local\/bin\/gantry from ~\/\.local\/bin/);
  });

  it("passes over the Python extension's interpreter for gantry on PATH", async () => {
    const r = chosen(await resolve({ '/usr/local/bin/gantry': 'gantry' }, { ...untrusted, python: '/ws/.venv/bin/python' }).result);
    assert.deepEqual([r.command, r.args, r.source], ['/usr/local/bin/gantry', ['serve'], 'path']);
    assert.match(r.distrusted!, /not trusted.*\/ws\/\.venv\/bin\/python.*\/usr\/local\/bin\/gantry from PATH/);
  });

  it('skips a PATH directory inside the workspace, and a candidate whose link leads into it, unread and unrun', async () => {
    const files: Record<string, FakeFile> = {
      '/ws/.venv/bin/gantry': 'gantry',
      [LOCAL_BIN]: { link: '/ws/tools/gantry' },
      '/ws/tools/gantry': 'gantry',
      '/usr/local/bin/gantry': { link: '/ws/evil/gantry' },
      '/ws/evil/gantry': 'gantry',
      '/usr/bin/gantry': 'gantry',
    };
    const { fake, result } = resolve(files, { ...untrusted, env: { PATH: '/ws/.venv/bin:/usr/local/bin:/usr/bin' } });
    const r = chosen(await result);
    assert.equal(r.command, '/usr/bin/gantry');
    assert.deepEqual(underWs(fake.looked), []);
    assert.deepEqual(fake.ran, ['/usr/bin/gantry']);
    const lines = r.skipped.map(describeSkip);
    assert.ok(lines.includes(`~/.local/bin (${LOCAL_BIN}): untrusted workspace (it leads to /ws/tools/gantry, inside the workspace)`), lines.join('\n'));
    assert.ok(lines.includes('PATH (/ws/.venv/bin): untrusted workspace (a PATH directory inside the workspace; not looked at)'), lines.join('\n'));
    assert.ok(lines.includes('PATH (/usr/local/bin/gantry): untrusted workspace (it leads to /ws/evil/gantry, inside the workspace)'), lines.join('\n'));
    assert.equal(r.distrusted, undefined, 'nothing the user chose was passed over: no notice');
  });

  it('passes over a configured command inside the workspace, unread, not one outside it', async () => {
    for (const configured of [['${workspaceFolder}/.venv/bin/gantry', 'serve'], ['.venv/bin/gantry', 'serve'], ['/ws/gantry'], ['gantry']]) {
      const files: Record<string, FakeFile> = { '/ws/.venv/bin/gantry': 'gantry', '/ws/gantry': 'gantry', '/ws/bin/gantry': 'gantry', '/usr/bin/gantry': 'gantry' };
      const { fake, result } = resolve(files, { ...untrusted, configured, env: { PATH: '/ws/bin:/usr/bin' } });
      const r = chosen(await result);
      assert.equal(r.command, '/usr/bin/gantry', JSON.stringify(configured));
      assert.deepEqual(underWs(fake.looked), [], JSON.stringify(configured));
      if (configured[0] !== 'gantry') {
        assert.match(r.distrusted!, /gantry\.server\.command \/ws\/(\.venv\/bin\/)?gantry, which is inside the workspace/);
      } else {
        assert.equal(r.source, 'setting', 'a bare name: found on PATH outside the workspace');
      }
    }
    const r = chosen(await resolve({ '/home/me/bin/gantry': 'gantry' }, { ...untrusted, configured: ['~/bin/gantry', 'serve'] }).result);
    assert.deepEqual([r.command, r.source, r.distrusted], ['/home/me/bin/gantry', 'setting', undefined]);
  });

  it('says why when nothing else is left', async () => {
    const r = await resolve({}, { ...untrusted, python: '/ws/.venv/bin/python' }).result;
    assert.ok(!r.ok);
    assert.match(r.message, /not found: this workspace is not trusted.*\/ws\/\.venv\/bin\/python.*Looked in: .*the workspace's \.venv \(untrusted workspace\).*PATH \(not found\).*pip install gantry-lsp/);
  });

  it('changes nothing when there was nothing to pass over', async () => {
    const r = chosen(await resolve({ '/usr/bin/gantry': 'gantry' }, untrusted).result);
    assert.equal(r.distrusted, undefined);
  });
});
