// Which command starts the Gantry server. Pure: no `vscode` import, so Node's test runner tests it.
//
// Order: the `gantry.server.command` setting; else the Python extension's interpreter when Gantry
// is installed in it (`<python> -P -m lsp_server serve`); else `gantry serve` from PATH. In a
// workspace VS Code does not trust, nothing the repository may have chosen runs: not that
// interpreter (it may be the workspace's own .venv), not a configured command inside the workspace
// folder.
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
  /** What an untrusted workspace's server would have been, and why it is not: told once. */
  distrusted?: string;
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
  /** Whether VS Code trusts the workspace. */
  trusted: boolean;
  /**
   * The Python extension's interpreter, and whether `lsp_server` can be imported by it (probed
   * only in a trusted workspace: the probe runs it).
   */
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
  '["/path/to/python", "-P", "-m", "lsp_server", "serve"].';

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

function inside(file: string, folder: string | undefined): boolean {
  if (folder === undefined) {
    return false;
  }
  const relative = path.relative(folder, file);
  return relative !== '..' && !relative.startsWith('..' + path.sep) && !path.isAbsolute(relative);
}

export function resolveServerCommand(inputs: ResolveInputs): Resolved {
  const configured = inputs.configured;
  const passedOver: string[] = [];
  if (configured !== undefined && configured !== null && !(Array.isArray(configured) && configured.length === 0)) {
    if (!Array.isArray(configured) || !configured.every((p) => typeof p === 'string' && p.length > 0)) {
      return {
        ok: false,
        message:
          'Gantry: `gantry.server.command` must be a list of strings, for example ' +
          `["gantry", "serve"]; it is ${JSON.stringify(configured)}.`,
      };
    }
    const [expanded, ...args] = configured.map((p: string) => expand(p, inputs));
    // A relative path is relative to the workspace folder: the server's working directory.
    const command = expanded.includes('/') || expanded.includes(path.sep)
      ? path.resolve(inputs.workspaceFolder ?? '', expanded)
      : expanded;
    const found = inputs.which(command);
    if (!found) {
      return {
        ok: false,
        message:
          `Gantry: the server command \`${command}\` from \`gantry.server.command\` was not found. ` +
          MISSING_FIX,
      };
    }
    if (inputs.trusted || !inside(found, inputs.workspaceFolder)) {
      return {
        ok: true,
        command: found,
        args,
        source: 'setting',
        description: `${[found, ...args].join(' ')} (from the gantry.server.command setting)`,
      };
    }
    passedOver.push(`the gantry.server.command ${found}, which is inside the workspace`);
  }
  if (inputs.python && !inputs.trusted) {
    passedOver.push(`the Python extension's interpreter (${inputs.python.path}), which may be the workspace's own`);
  } else if (inputs.python?.hasGantry) {
    // -P: the server runs in the workspace, whose own `types.py` or `json.py` would otherwise
    // shadow the standard library (`-m` puts the working directory first on sys.path).
    const args = ['-P', '-m', 'lsp_server', 'serve'];
    return {
      ok: true,
      command: inputs.python.path,
      args,
      source: 'python',
      description: `${[inputs.python.path, ...args].join(' ')} (the Python extension's interpreter)`,
    };
  }
  const distrusted = passedOver.length
    ? `this workspace is not trusted, so Gantry does not start ${passedOver.join(', or ')}.`
    : undefined;
  const gantry = inputs.which('gantry');
  if (gantry) {
    return {
      ok: true,
      command: gantry,
      args: ['serve'],
      source: 'path',
      description: `${gantry} serve (gantry found on PATH)`,
      distrusted: distrusted && `${distrusted} It uses ${gantry} from PATH; trust the workspace to change that.`,
    };
  }
  const where = distrusted
    ? `: ${distrusted} \`gantry\` is not on PATH either.`
    : inputs.python
      ? `. It is not installed in the selected Python interpreter (${inputs.python.path}) and \`gantry\` is not on PATH.`
      : '. `gantry` is not on PATH and no Python interpreter with Gantry was found.';
  return { ok: false, message: `Gantry: the language server was not found${where} ${MISSING_FIX}` };
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
    // Relative entries ('.', '') would resolve against the server's working directory: the workspace.
    const isAbsolute = windows ? path.win32.isAbsolute : path.posix.isAbsolute;
    const dirs = (env.PATH ?? env.Path ?? '').split(windows ? ';' : ':').filter(isAbsolute);
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
