// Node-only helpers (no `vscode` import): is a file executable, is it Gantry, is Gantry importable
// by a Python. `nodeProbes` is what serverCommand.ts asks of the machine.
import { execFile } from 'child_process';
import * as fs from 'fs';

import type { FileState, Probes, Verdict } from './serverCommand';

export function fileState(file: string): FileState {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch {
    return 'missing';
  }
  if (!stat.isFile()) {
    return 'missing';
  }
  if (process.platform === 'win32') {
    return 'executable';
  }
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return 'executable';
  } catch {
    return 'not-executable';
  }
}

export function isExecutable(file: string): boolean {
  return fileState(file) === 'executable';
}

/**
 * True when `python` can import `lsp_server` (Gantry's server package); false on any failure.
 * With -P, as the server is started: `-c` would put the working directory first on sys.path, so
 * what lies there could answer for `importlib` or `lsp_server` (and Pythons before 3.11, too old
 * for Gantry, refuse the option).
 */
export function pythonHasGantry(python: string, timeoutMs = 10000): Promise<boolean> {
  const code = 'import importlib.util, sys; sys.exit(importlib.util.find_spec("lsp_server") is None)';
  return new Promise((resolve) => {
    execFile(python, ['-P', '-c', code], { timeout: timeoutMs, windowsHide: true }, (error) => resolve(!error));
  });
}

/**
 * Whether `file` is Gantry's `gantry`: `gantry --version` answers `gantry <version>`. Another
 * program named gantry (there are some) answers otherwise, or fails; a hung one is cut off.
 */
export function gantryVersion(file: string, timeoutMs = 10000): Promise<Verdict> {
  return new Promise((resolve) => {
    execFile(file, ['--version'], { timeout: timeoutMs, windowsHide: true }, (error, stdout, stderr) => {
      const first = String(stdout).trim().split(/\r?\n/)[0] ?? '';
      if (error) {
        const why = error.killed
          ? `\`gantry --version\` did not answer within ${timeoutMs / 1000} s`
          : `\`gantry --version\` failed: ${String(stderr).trim().split(/\r?\n/).pop() || error.message}`;
        resolve({ ok: false, why });
      } else if (/^gantry \d/.test(first)) {
        resolve({ ok: true, version: first });
      } else {
        resolve({ ok: false, why: `\`gantry --version\` answered ${JSON.stringify(first.slice(0, 80))}: not Gantry's gantry` });
      }
    });
  });
}

export const nodeProbes: Probes = {
  fileState,
  realpath: (file) => {
    try {
      return fs.realpathSync(file);
    } catch {
      return file;
    }
  },
  listDir: (dir) => {
    try {
      return fs.readdirSync(dir);
    } catch {
      return [];
    }
  },
  gantryVersion: (file) => gantryVersion(file),
  pythonHasGantry: (python) => pythonHasGantry(python),
};
