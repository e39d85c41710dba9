// Node-only helpers (no `vscode` import): is a file executable, is Gantry importable by a Python.
import { execFile } from 'child_process';
import * as fs from 'fs';

export function isExecutable(file: string): boolean {
  try {
    const stat = fs.statSync(file);
    if (!stat.isFile()) {
      return false;
    }
    if (process.platform === 'win32') {
      return true;
    }
    fs.accessSync(file, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
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
