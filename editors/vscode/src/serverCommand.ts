// Which command starts the Gantry server. Pure: no `vscode` import, so Node's test runner tests it.
//
// Order: the `gantry.server.command` setting; else the Python extension's interpreter when Gantry
// is installed in it (`<python> -m lsp_server serve`); else `gantry serve` from PATH.
import * as path from 'path';

export const INSTALL_HINT = 'pip install gantry-lsp';

export type ServerSource = 'setting' | 'python' | 'path';

export interface ServerCommand {
  ok: true;
  command: string;
  args: string[];
  source: ServerSource;
  /** One line for the output channel: what runs and why. */
  description: string;
}

export interface ServerMissing {
  ok: false;
  /** The one message the user sees: what is wrong and how to fix it. */
  message: string;
}

export type Resolved = ServerCommand | ServerMissing;

export interface ResolveInputs {
  /** The raw `gantry.server.command` value (anything: it comes from the user's settings). */
  configured: unknown;
  /** The Python extension's interpreter, and whether `lsp_server` can be imported by it. */
  python?: { path: string; hasGantry: boolean };
  /** Finds an executable by name on PATH (or checks a path); undefined when there is none. */
  which: (name: string) => string | undefined;
  /** Replaces ${workspaceFolder} in the configured command. */
  workspaceFolder?: string;
  /** The user's home directory, for a leading `~`. */
  home?: string;
}

const MISSING_FIX =
  `Install it with \`${INSTALL_HINT}\` (in the interpreter the Python extension uses, or anywhere ` +
  'on PATH), or set `gantry.server.command` to the command that starts it, for example ' +
  '["/path/to/python", "-m", "lsp_server", "serve"].';

function expand(part: string, inputs: ResolveInputs): string {
  let out = part;
  if (inputs.workspaceFolder !== undefined) {
    out = out.split('${workspaceFolder}').join(inputs.workspaceFolder);
  }
  if (inputs.home && (out === '~' || out.startsWith('~/'))) {
    out = inputs.home + out.slice(1);
  }
  return out;
}

export function resolveServerCommand(inputs: ResolveInputs): Resolved {
  const configured = inputs.configured;
  if (configured !== undefined && configured !== null && !(Array.isArray(configured) && configured.length === 0)) {
    if (!Array.isArray(configured) || !configured.every((p) => typeof p === 'string' && p.length > 0)) {
      return {
        ok: false,
        message:
          'Gantry: `gantry.server.command` must be a list of strings, for example ' +
          `["gantry", "serve"]; it is ${JSON.stringify(configured)}.`,
      };
    }
    const [command, ...args] = configured.map((p: string) => expand(p, inputs));
    const found = inputs.which(command);
    if (!found) {
      return {
        ok: false,
        message:
          `Gantry: the server command \`${command}\` from \`gantry.server.command\` was not found. ` +
          MISSING_FIX,
      };
    }
    return {
      ok: true,
      command: found,
      args,
      source: 'setting',
      description: `${[found, ...args].join(' ')} (from the gantry.server.command setting)`,
    };
  }
  if (inputs.python?.hasGantry) {
    const args = ['-m', 'lsp_server', 'serve'];
    return {
      ok: true,
      command: inputs.python.path,
      args,
      source: 'python',
      description: `${[inputs.python.path, ...args].join(' ')} (the Python extension's interpreter)`,
    };
  }
  const gantry = inputs.which('gantry');
  if (gantry) {
    return {
      ok: true,
      command: gantry,
      args: ['serve'],
      source: 'path',
      description: `${gantry} serve (gantry found on PATH)`,
    };
  }
  const where = inputs.python
    ? `It is not installed in the selected Python interpreter (${inputs.python.path}) and \`gantry\` is not on PATH.`
    : '`gantry` is not on PATH and no Python interpreter with Gantry was found.';
  return { ok: false, message: `Gantry: the language server was not found. ${where} ${MISSING_FIX}` };
}

/** `which`: an explicit path must exist; a bare name is looked up on PATH (with PATHEXT on Windows). */
export function makeWhich(
  env: Record<string, string | undefined>,
  platform: string,
  isExecutable: (file: string) => boolean,
): (name: string) => string | undefined {
  const windows = platform === 'win32';
  const exts = windows ? ['', ...(env.PATHEXT ?? '.EXE;.CMD;.BAT;.COM').split(';').filter(Boolean)] : [''];
  return (name: string) => {
    if (name.includes('/') || (windows && name.includes('\\'))) {
      return exts.map((e) => name + e).find(isExecutable);
    }
    const dirs = (env.PATH ?? env.Path ?? '').split(windows ? ';' : ':').filter(Boolean);
    for (const dir of dirs) {
      for (const ext of exts) {
        const candidate = path.join(dir, name + ext);
        if (isExecutable(candidate)) {
          return candidate;
        }
      }
    }
    return undefined;
  };
}
