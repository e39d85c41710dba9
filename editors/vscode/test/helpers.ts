import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

/** The repository's Python with Gantry installed: the pytest wrapper sets GANTRY_TEST_PYTHON. */
export const PYTHON = process.env.GANTRY_TEST_PYTHON || path.resolve(__dirname, '../../../../.venv/bin/python');

export const EXTENSION_ROOT = path.resolve(__dirname, '../..');

export function tempDir(prefix = 'gantry-vscode-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/**
 * A directory holding an executable `name`: a shell script that exits with `exitCode` and, asked
 * `--version`, answers `<name> 0.0.0-test` (as Gantry's `gantry --version` does).
 */
export function binDir(name: string, exitCode = 0): string {
  const dir = tempDir('gantry-bin-');
  writeScript(path.join(dir, name), `[ "$1" = --version ] && echo '${name} 0.0.0-test'\nexit ${exitCode}`);
  return dir;
}

/** An executable shell script at `file` (directories made), running `body`. */
export function writeScript(file: string, body: string): string {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, `#!/bin/sh\n${body}\n`);
  fs.chmodSync(file, 0o755);
  return file;
}

export function waitFor(predicate: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const start = Date.now();
  return new Promise((resolve, reject) => {
    const tick = () => {
      if (predicate()) {
        resolve();
      } else if (Date.now() - start > timeoutMs) {
        reject(new Error(`timed out waiting for ${what}`));
      } else {
        setTimeout(tick, 10);
      }
    };
    tick();
  });
}
