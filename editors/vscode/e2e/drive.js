// Drives a real VS Code (code-server, started by run-code-server.sh) in Debian's chromium with
// Playwright: the Gantry extension activates, its status bar item says ready, diagnostics from
// the real server reach the Problems panel, and two palette commands answer.
// The workspace starts with a server command that does not exist: the one clear message shows,
// then the settings file is rewritten with the real command and the extension restarts by itself.
// Env: CS_URL, SHOT (png path), SETTINGS_FILE (code-server's Machine settings.json: the command is machine-scoped),
// SERVER_COMMAND (JSON list); NODE_PATH must reach playwright-core (DEST/tools/node_modules).
// Fails on any request that leaves loopback.
const fs = require('fs');
const { chromium } = require('playwright-core');

const step = (name) => console.log(`e2e: ${name}`);

async function palette(page, title) {
  await page.keyboard.press('Escape');
  await page.keyboard.press('F1');
  const input = page.locator('.quick-input-widget input');
  await input.waitFor({ timeout: 20000 });
  await input.fill('>' + title);
  await page.locator('.quick-input-list .monaco-list-row', { hasText: title }).first().waitFor({ timeout: 20000 });
  await page.keyboard.press('Enter');
}

(async () => {
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  const external = new Set();
  page.on('request', (r) => {
    const u = new URL(r.url());
    if (!['127.0.0.1', 'localhost'].includes(u.hostname) && /^https?:/.test(u.protocol)) external.add(r.url());
  });
  try {
    await page.goto(process.env.CS_URL, { timeout: 60000 });
    await page.waitForSelector('.monaco-workbench', { timeout: 90000 });
    step('workbench');
    const statusbar = page.locator('#workbench\\.parts\\.statusbar');
    await statusbar.locator('.statusbar-item', { hasText: 'Gantry: server not found' }).first().waitFor({ timeout: 90000 });
    await page.locator('.notifications-toasts', { hasText: '/nonexistent/gantry' }).waitFor({ timeout: 20000 });
    await page.locator('.notifications-toasts', { hasText: 'pip install gantry-lsp' }).waitFor({ timeout: 20000 });
    step('missing server: status bar and one message');
    const settings = JSON.parse(fs.readFileSync(process.env.SETTINGS_FILE, 'utf8'));
    settings['gantry.server.command'] = JSON.parse(process.env.SERVER_COMMAND);
    // Atomically: VS Code reloads on the first write event, and a truncated file reads as no settings.
    fs.writeFileSync(`${process.env.SETTINGS_FILE}.tmp`, JSON.stringify(settings));
    fs.renameSync(`${process.env.SETTINGS_FILE}.tmp`, process.env.SETTINGS_FILE);
    // The item reads "Gantry" with a check icon when the server reports ready.
    await statusbar.locator('.statusbar-item:has(.codicon-check)', { hasText: 'Gantry' }).first().waitFor({ timeout: 90000 });
    step('settings changed -> restarted -> status bar: Gantry ready');

    await page.locator('.monaco-workbench').click({ position: { x: 700, y: 400 } });
    await page.keyboard.press('Control+P');
    await page.locator('.quick-input-widget input').waitFor({ timeout: 20000 });
    await page.keyboard.type('app.py');
    await page.locator('.quick-input-list .monaco-list-row', { hasText: 'app.py' }).first().waitFor({ timeout: 20000 });
    await page.keyboard.press('Enter');
    await page.locator('.tab', { hasText: 'app.py' }).first().waitFor({ timeout: 20000 });
    step('app.py open');

    await palette(page, 'View: Focus Problems');
    const problems = page.locator('.markers-panel');
    await problems.getByText('F401', { exact: false }).first().waitFor({ timeout: 60000 });
    await problems.getByText('E711', { exact: false }).first().waitFor({ timeout: 20000 });
    step('problems: F401 and E711 from gantry');

    // A quick fix (resolved lazily through codeAction/resolve) and a dismissal (a server command).
    const quickFix = async (line, col, title) => {
      await page.locator('.monaco-editor .view-lines').first().click();
      await page.keyboard.press('Control+G');
      await page.locator('.quick-input-widget input').waitFor({ timeout: 20000 });
      await page.keyboard.type(`${line}:${col}`);
      await page.keyboard.press('Enter');
      await page.keyboard.press('Control+.');
      await page.locator('.action-widget .monaco-list-row', { hasText: title }).first().click({ timeout: 20000 });
    };
    const gone = (code) => page.waitForFunction(
      (c) => !(document.querySelector('.markers-panel')?.textContent ?? '').includes(c), code, { timeout: 30000 });
    await quickFix(1, 8, 'Remove unused import');
    await gone('F401');
    await page.locator('.monaco-editor .view-lines', { hasText: 'def f(x):' }).first().waitFor({ timeout: 5000 });
    if (await page.locator('.monaco-editor .view-lines', { hasText: 'import os' }).count()) {
      throw new Error('the quick fix did not remove the import');
    }
    step('quick fix applied: F401 gone');
    await quickFix(4, 14, 'Gantry: dismiss E711 here'); // the fix removed line 1: `x == None` is on line 4 now
    await gone('E711');
    step('dismissed: E711 gone');

    // On a blank line: nothing to test there, and the server says so (a real run is tested
    // over stdio, tests/test_testgen_editor.py).
    await page.locator('.monaco-editor .view-lines').first().click();
    await page.keyboard.press('Control+G');
    await page.locator('.quick-input-widget input').waitFor({ timeout: 20000 });
    await page.keyboard.type('1:1');
    await page.keyboard.press('Enter');
    await palette(page, 'Gantry: Generate Tests');
    await page.locator('.notifications-toasts', { hasText: 'no public function, method or class there' }).waitFor({ timeout: 20000 });
    step('Generate Tests: the server answers for the cursor');

    await palette(page, 'Gantry: Show Queue');
    await page.locator('.quick-input-widget', { hasText: /Gantry queue|queue is empty|remote execution/ }).waitFor({ timeout: 30000 });
    step('Show Queue: quick pick');
    await page.keyboard.press('Escape');

    if (process.env.SHOT) await page.screenshot({ path: process.env.SHOT });
    if (external.size) throw new Error(`non-loopback requests: ${[...external].join(', ')}`);
    console.log('e2e ok');
  } catch (error) {
    if (process.env.SHOT) await page.screenshot({ path: process.env.SHOT }).catch(() => {});
    console.error('e2e failed:', error);
    process.exitCode = 1;
  } finally {
    await browser.close();
  }
})();
