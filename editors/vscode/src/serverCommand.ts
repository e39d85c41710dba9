// Which command starts the Gantry server. No `vscode` import, so Node's test runner tests it; the
// file system and the probes that run programs come in as `Probes` (probe.ts has the real ones).
//
// Order, as ruff's extension finds ruff (its `path` setting, the selected interpreter, the user's
// scripts directory, PATH), with the places a new user's Gantry lands:
//   1. the `gantry.server.command` setting (user settings only);
//   2. the Python extension's interpreter, when Gantry is installed in it
//      (`<python> -P -m lsp_server serve`);
//   3. the workspace's `.venv`, then `venv` (`<venv>/bin/gantry serve`), each workspace folder in
//      order;
//   4. the user's own installs: `$PIPX_BIN_DIR`, `~/.local/bin` (pipx's links, `pip install
//      --user`), the per-version user scripts directories on macOS and Windows, then pipx's
//      `gantry-lsp` environment under `$PIPX_HOME` or pipx's default homes;
//   5. `gantry` on PATH, as VS Code's extension host sees it (which is not always the shell's:
//      code-server, a remote window or a desktop launcher start it with another environment,
//      hence 3 and 4).
// Every candidate is checked before use: it exists, it is executable, and it is Gantry (`gantry
// --version` answers `gantry <version>`; the interpreter can import lsp_server). The first that
// passes is started; every one passed over is reported with why (`skipped`), for the output
// channel and, when none is left, the one message the user sees.
//
// In a workspace VS Code does not trust, nothing the repository may have put there is looked at,
// let alone run: not the Python extension's interpreter (it may be the workspace's own .venv), not
// the workspace's .venv or venv, not a configured command, a PATH directory or any other candidate
// that lies inside a workspace folder (links followed).
import * as path from 'path';

export const INSTALL_HINT = 'pip install gantry-lsp';
export const PIPX_HINT = 'pipx install gantry-lsp';
/** The distribution's name: pipx names the environment it installs Gantry in after it. */
export const PACKAGE_NAME = 'gantry-lsp';

export type ServerSource = 'setting' | 'python' | 'workspace' | 'user' | 'pipx' | 'path';

export type SkipReason = 'not found' | 'not executable' | 'untrusted workspace' | 'probe failed';

/** A candidate passed over, and why: one line in the output channel. */
export interface Skipped {
  /** Where it was looked for, in words: "the workspace's .venv", "PATH". */
  label: string;
  /** The file (or PATH directory) concerned, when there is one. */
  path?: string;
  reason: SkipReason;
  /** What the probe answered, or which rule applies. */
  detail?: string;
}

export interface ServerCommand {
  ok: true;
  command: string;
  args: string[];
  source: ServerSource;
  /** One line for the output channel: what runs and why. */
  description: string;
  /** The candidates tried before it, in order, and why each was passed over. */
  skipped: Skipped[];
  /** What an untrusted workspace's server would have been, and why it is not: told once. */
  distrusted?: string;
}

export interface ServerMissing {
  ok: false;
  /** The one message the user sees: what is wrong and how to fix it. */
  message: string;
  /** Every candidate tried, in order, and why each was passed over. */
  skipped: Skipped[];
}

export type Resolved = ServerCommand | ServerMissing;

export type FileState = 'missing' | 'not-executable' | 'executable';

export type Verdict = { ok: true; version: string } | { ok: false; why: string };

/** What the resolution may ask of the machine. Only these touch the file system or run anything. */
export interface Probes {
  /** Whether `file` exists (following links) and may be executed. */
  fileState(file: string): FileState;
  /** Where `file` leads, links followed (`file` itself when that cannot be read). */
  realpath(file: string): string;
  /** The names in `dir` ([] when it cannot be read). */
  listDir(dir: string): string[];
  /** Runs `file --version`: Gantry answers `gantry <version>`. */
  gantryVersion(file: string): Promise<Verdict>;
  /** Runs `python -P -c ...`: whether it can import lsp_server. */
  pythonHasGantry(python: string): Promise<boolean>;
}

export interface ResolveInputs {
  /** The raw `gantry.server.command` value (anything: it comes from the user's settings). */
  configured: unknown;
  /** Whether VS Code trusts the workspace. */
  trusted: boolean;
  /** The Python extension's interpreter, when there is one (probed only in a trusted workspace). */
  python?: string;
  /** The workspace folders' paths; the first one is `${workspaceFolder}` and the server's directory. */
  workspaceFolders?: string[];
  /** The user's home directory: a leading `~`, `~/.local/bin`, pipx's homes. */
  home?: string;
  /** The extension host's environment: PATH, PATHEXT, PIPX_HOME, PIPX_BIN_DIR, XDG_DATA_HOME, ... */
  env?: Record<string, string | undefined>;
  /** `process.platform`; 'win32' switches to Windows paths (Scripts\gantry.exe, PATHEXT). */
  platform?: string;
  probes: Probes;
}

const MISSING_FIX =
  `Install it with \`${PIPX_HINT}\` (the extension looks in ~/.local/bin and in pipx's environments), ` +
  `or \`${INSTALL_HINT}\` in the interpreter the Python extension uses or in the workspace's .venv, ` +
  'or set `gantry.server.command` to the command that starts it, for example ' +
  '["/path/to/python", "-P", "-m", "lsp_server", "serve"].';

const SETTING = 'gantry.server.command';
const INTERPRETER = "the Python extension's interpreter";

/** One output-channel line: `~/.local/bin (/home/me/.local/bin/gantry): not found`. */
export function describeSkip(skipped: Skipped): string {
  const where = skipped.path ? `${skipped.label} (${skipped.path})` : skipped.label;
  return `${where}: ${skipped.reason}${skipped.detail ? ` (${skipped.detail})` : ''}`;
}

interface Candidate {
  label: string;
  file: string;
  source: ServerSource;
}

class Resolution {
  readonly windows: boolean;
  readonly p: path.PlatformPath;
  readonly env: Record<string, string | undefined>;
  readonly folders: string[];
  readonly skipped: Skipped[] = [];
  /** Phrases for the one-time notice of what an untrusted workspace does not get. */
  readonly passedOver: string[] = [];
  private readonly seen = new Set<string>();
  private real: string[] | undefined;

  constructor(readonly inputs: ResolveInputs) {
    this.windows = inputs.platform === 'win32';
    this.p = this.windows ? path.win32 : path.posix;
    this.env = inputs.env ?? {};
    this.folders = inputs.workspaceFolders ?? [];
  }

  get probes(): Probes {
    return this.inputs.probes;
  }

  /** The workspace folders, links followed (/tmp is /private/tmp on macOS). */
  realFolders(): string[] {
    this.real ??= this.folders.map((folder) => this.probes.realpath(folder));
    return this.real;
  }

  skip(skipped: Skipped): void {
    this.skipped.push(skipped);
  }

  /** Whether `file` lies in a workspace folder (by its path only: nothing is read). */
  inWorkspace(file: string, folders = this.folders): boolean {
    return folders.some((folder) => {
      const relative = this.p.relative(folder, file);
      return relative === '' || (relative !== '..' && !relative.startsWith('..' + this.p.sep) && !this.p.isAbsolute(relative));
    });
  }

  pathDirs(): string[] {
    return pathDirs(this.env, this.inputs.platform ?? process.platform);
  }

  /** `bin/gantry`, or `Scripts\gantry.exe` on Windows, under a virtual environment. */
  venvExecutable(venv: string): string {
    return this.windows ? this.p.join(venv, 'Scripts', 'gantry.exe') : this.p.join(venv, 'bin', 'gantry');
  }

  binExecutable(dir: string): string {
    return this.p.join(dir, this.windows ? 'gantry.exe' : 'gantry');
  }

  /**
   * Check one candidate: (untrusted: neither lies nor leads into the workspace), exists, is
   * executable, is Gantry. Undefined when it will not do, after reporting why.
   */
  async verify(candidate: Candidate): Promise<ServerCommand | undefined> {
    const { file, label } = candidate;
    const key = this.windows ? file.toLowerCase() : file;
    if (this.seen.has(key)) {
      return undefined; // already tried under another name (~/.local/bin is usually on PATH)
    }
    this.seen.add(key);
    if (!this.inputs.trusted && this.inWorkspace(file)) {
      this.skip({ label, path: file, reason: 'untrusted workspace', detail: 'inside the workspace; not looked at' });
      return undefined;
    }
    if (!this.inputs.trusted) {
      // Links are followed before the file is even stat'd: ~/.local/bin/gantry may lead anywhere.
      const real = this.probes.realpath(file);
      if (real !== file && (this.inWorkspace(real) || this.inWorkspace(real, this.realFolders()))) {
        this.skip({ label, path: file, reason: 'untrusted workspace', detail: `it leads to ${real}, inside the workspace` });
        return undefined;
      }
    }
    const state = this.probes.fileState(file);
    if (state === 'missing') {
      this.skip({ label, path: file, reason: 'not found' });
      return undefined;
    }
    if (state === 'not-executable') {
      this.skip({ label, path: file, reason: 'not executable' });
      return undefined;
    }
    const verdict = await this.probes.gantryVersion(file);
    if (!verdict.ok) {
      this.skip({ label, path: file, reason: 'probe failed', detail: verdict.why });
      return undefined;
    }
    return {
      ok: true,
      command: file,
      args: ['serve'],
      source: candidate.source,
      description: `${file} serve (${verdict.version}, from ${label})`,
      skipped: this.skipped,
    };
  }

  /** 3: the workspace's own virtual environments; in an untrusted workspace, not even looked at. */
  workspaceCandidates(): Candidate[] {
    return this.folders.flatMap((folder) =>
      ['.venv', 'venv'].map((name) => ({
        label: `the workspace's ${name}`,
        file: this.venvExecutable(this.p.join(folder, name)),
        source: 'workspace' as const,
      })),
    );
  }

  /** 4: where pipx and `pip install --user` put the user's own installs. */
  userCandidates(): Candidate[] {
    const home = this.inputs.home;
    const env = this.env;
    const p = this.p;
    const absolute = (dir: string | undefined) => (dir && p.isAbsolute(dir) ? dir : undefined);
    const candidates: Candidate[] = [];
    const bin = (label: string, dir: string | undefined, source: ServerSource = 'user') => {
      if (dir) {
        candidates.push({ label, file: this.binExecutable(dir), source });
      }
    };
    bin('PIPX_BIN_DIR', absolute(env.PIPX_BIN_DIR), 'pipx');
    if (home) {
      bin('~/.local/bin', p.join(home, '.local', 'bin'));
      // `pip install --user` with a macOS framework Python or on Windows: one directory per version.
      const perVersion = (root: string, scripts: (version: string) => string, label: string) => {
        const versions = this.probes
          .listDir(root)
          .filter((name) => /^(Python)?3\.?\d+$/.test(name))
          .sort((a, b) => b.localeCompare(a, undefined, { numeric: true }));
        for (const version of versions) {
          bin(`${label} (${version})`, scripts(version));
        }
      };
      if (this.inputs.platform === 'darwin') {
        const root = p.join(home, 'Library', 'Python');
        perVersion(root, (v) => p.join(root, v, 'bin'), 'pip --user');
      } else if (this.windows && absolute(env.APPDATA)) {
        const root = p.join(env.APPDATA!, 'Python');
        perVersion(root, (v) => p.join(root, v, 'Scripts'), 'pip --user');
      }
    }
    // pipx's own environment for gantry-lsp: the link in the bin directory may be missing or
    // elsewhere. Its home: $PIPX_HOME, else the default of pipx >= 1.3 or of older ones.
    const homes: (string | undefined)[] = [absolute(env.PIPX_HOME)];
    if (home) {
      const local = p.join(home, '.local', 'pipx');
      if (this.windows) {
        homes.push(p.join(home, 'pipx'), local, absolute(env.LOCALAPPDATA) && p.join(env.LOCALAPPDATA!, 'pipx', 'pipx'));
      } else if (this.inputs.platform === 'darwin') {
        homes.push(local, p.join(home, 'Library', 'Application Support', 'pipx'));
      } else {
        const dataHome = absolute(env.XDG_DATA_HOME);
        homes.push(dataHome && p.join(dataHome, 'pipx'), p.join(home, '.local', 'share', 'pipx'), local);
      }
    }
    for (const pipxHome of homes) {
      if (pipxHome) {
        candidates.push({
          label: `pipx's ${PACKAGE_NAME} environment`,
          file: this.venvExecutable(p.join(pipxHome, 'venvs', PACKAGE_NAME)),
          source: 'pipx',
        });
      }
    }
    return candidates;
  }

  /** 5: every `gantry` on PATH, in order (the first may be another program of that name). */
  pathCandidates(): Candidate[] {
    const files: Candidate[] = [];
    const dirs = this.pathDirs();
    for (const dir of dirs) {
      if (!this.inputs.trusted && this.inWorkspace(dir)) {
        this.skip({ label: 'PATH', path: dir, reason: 'untrusted workspace', detail: 'a PATH directory inside the workspace; not looked at' });
        continue;
      }
      for (const ext of executableExtensions(this.env, this.inputs.platform ?? process.platform)) {
        const file = this.p.join(dir, 'gantry' + ext);
        // Untrusted: a link is handed to verify() unstat'd, which follows it first.
        const link = !this.inputs.trusted && this.probes.realpath(file) !== file;
        if (link || this.probes.fileState(file) !== 'missing') {
          files.push({ label: 'PATH', file, source: 'path' });
        }
      }
    }
    if (files.length === 0) {
      this.skip({
        label: 'PATH',
        reason: 'not found',
        detail: dirs.length ? `no gantry in the ${dirs.length} ${dirs.length === 1 ? 'directory' : 'directories'} on it` : 'PATH is empty',
      });
    }
    return files;
  }
}

function expand(part: string, inputs: ResolveInputs): string {
  let out = part;
  const folder = inputs.workspaceFolders?.[0];
  if (folder !== undefined) {
    out = out.split('${workspaceFolder}').join(folder);
  }
  if (inputs.home && (out === '~' || out.startsWith('~/'))) {
    out = inputs.home + out.slice(1);
  }
  return out;
}

/** Step 1: undefined when the setting is empty (go on), a result when it decides. */
function fromSetting(r: Resolution): Resolved | undefined {
  const { inputs } = r;
  const configured = inputs.configured;
  if (configured === undefined || configured === null || (Array.isArray(configured) && configured.length === 0)) {
    r.skip({ label: SETTING, reason: 'not found', detail: 'not set' });
    return undefined;
  }
  if (!Array.isArray(configured) || !configured.every((p) => typeof p === 'string' && p.length > 0)) {
    return {
      ok: false,
      message:
        `Gantry: \`${SETTING}\` must be a list of strings, for example ` +
        `["gantry", "serve"]; it is ${JSON.stringify(configured)}.`,
      skipped: r.skipped,
    };
  }
  const [expanded, ...args] = configured.map((p: string) => expand(p, inputs));
  const explicit = expanded.includes('/') || (r.windows && expanded.includes('\\'));
  // A relative path is relative to the workspace folder: the server's working directory.
  const command = explicit ? r.p.resolve(inputs.workspaceFolders?.[0] ?? '', expanded) : expanded;
  const passOver = (found: string) => {
    r.skip({ label: SETTING, path: found, reason: 'untrusted workspace', detail: 'inside the workspace; not looked at' });
    r.passedOver.push(`the ${SETTING} ${found}, which is inside the workspace`);
    return undefined;
  };
  if (explicit && !inputs.trusted && r.inWorkspace(command)) {
    return passOver(command);
  }
  // In an untrusted workspace, a bare name is not looked for in PATH directories inside it.
  const env = inputs.trusted ? r.env : { ...r.env, PATH: r.pathDirs().filter((d) => !r.inWorkspace(d)).join(r.windows ? ';' : ':'), Path: undefined };
  const which = makeWhich(env, inputs.platform ?? process.platform, (f) => inputs.probes.fileState(f) === 'executable');
  const found = which(command);
  if (!found) {
    const state = explicit ? inputs.probes.fileState(command) : 'missing';
    const what = state === 'not-executable' ? 'is not executable' : 'was not found';
    return {
      ok: false,
      message: `Gantry: the server command \`${command}\` from \`${SETTING}\` ${what}. ` + MISSING_FIX,
      skipped: [...r.skipped, { label: SETTING, path: command, reason: state === 'not-executable' ? 'not executable' : 'not found' }],
    };
  }
  if (inputs.trusted || !r.inWorkspace(found)) {
    return {
      ok: true,
      command: found,
      args,
      source: 'setting',
      description: `${[found, ...args].join(' ')} (from the ${SETTING} setting)`,
      skipped: r.skipped,
    };
  }
  return passOver(found);
}

/** Step 2. */
async function fromInterpreter(r: Resolution): Promise<ServerCommand | undefined> {
  const python = r.inputs.python;
  const label = `${INTERPRETER} ${python ?? ''}`.trim();
  if (!python) {
    r.skip({ label, reason: 'not found', detail: 'none selected, or the Python extension is not installed' });
    return undefined;
  }
  if (!r.inputs.trusted) {
    r.skip({ label, reason: 'untrusted workspace', detail: "it may be the workspace's own; not run" });
    r.passedOver.push(`${INTERPRETER} (${python}), which may be the workspace's own`);
    return undefined;
  }
  const state = r.probes.fileState(python);
  if (state !== 'executable') {
    r.skip({ label, reason: state === 'missing' ? 'not found' : 'not executable' });
    return undefined;
  }
  if (!(await r.probes.pythonHasGantry(python))) {
    r.skip({ label, reason: 'probe failed', detail: 'Gantry is not installed in it (lsp_server cannot be imported)' });
    return undefined;
  }
  // -P: the server runs in the workspace, whose own `types.py` or `json.py` would otherwise
  // shadow the standard library (`-m` puts the working directory first on sys.path).
  const args = ['-P', '-m', 'lsp_server', 'serve'];
  return {
    ok: true,
    command: python,
    args,
    source: 'python',
    description: `${[python, ...args].join(' ')} (${INTERPRETER})`,
    skipped: r.skipped,
  };
}

export async function resolveServerCommand(inputs: ResolveInputs): Promise<Resolved> {
  const r = new Resolution(inputs);
  const setting = fromSetting(r);
  if (setting) {
    return setting;
  }
  const interpreter = await fromInterpreter(r);
  if (interpreter) {
    return interpreter;
  }
  const distrusted = r.passedOver.length
    ? `this workspace is not trusted, so Gantry does not start ${r.passedOver.join(', or ')}.`
    : undefined;
  if (!inputs.trusted) {
    for (const candidate of r.workspaceCandidates()) {
      r.skip({ label: candidate.label, path: candidate.file, reason: 'untrusted workspace', detail: 'not looked at' });
    }
  }
  const stages: (() => Candidate[])[] = [
    () => (inputs.trusted ? r.workspaceCandidates() : []),
    () => r.userCandidates(),
    () => r.pathCandidates(),
  ];
  for (const stage of stages) {
    for (const candidate of stage()) {
      const found = await r.verify(candidate);
      if (found) {
        if (distrusted) {
          found.distrusted = `${distrusted} It uses ${found.command} from ${candidate.label}; trust the workspace to change that.`;
        }
        return found;
      }
    }
  }
  return { ok: false, message: missingMessage(r.skipped, distrusted), skipped: r.skipped };
}

/** The one message: not found, where it looked (the output channel has each file and why), the fix. */
function missingMessage(skipped: Skipped[], distrusted: string | undefined): string {
  const places = new Map<string, Set<SkipReason>>();
  for (const s of skipped) {
    if (s.label === SETTING || (s.label.startsWith(INTERPRETER) && s.reason === 'not found')) {
      continue;
    }
    const label = s.label.replace(/ \(.*\)$/, '');
    places.set(label, (places.get(label) ?? new Set()).add(s.reason));
  }
  const looked = [...places].map(([label, reasons]) => `${label} (${[...reasons].join(', ')})`).join(', ');
  return (
    `Gantry: the language server was not found${distrusted ? `: ${distrusted}` : '.'} ` +
    `Looked in: ${looked}; "Gantry: Show Output" says why each was passed over. ${MISSING_FIX}`
  );
}

function pathDirs(env: Record<string, string | undefined>, platform: string): string[] {
  const windows = platform === 'win32';
  // Relative entries ('.', '') would resolve against the server's working directory: the workspace.
  const isAbsolute = windows ? path.win32.isAbsolute : path.posix.isAbsolute;
  return (env.PATH ?? env.Path ?? '').split(windows ? ';' : ':').filter(isAbsolute);
}

function executableExtensions(env: Record<string, string | undefined>, platform: string): string[] {
  return platform === 'win32' ? ['', ...(env.PATHEXT ?? '.EXE;.CMD;.BAT;.COM').split(';').filter(Boolean)] : [''];
}

/** `which`: an explicit path must exist; a bare name is looked up on PATH (with PATHEXT on Windows). */
export function makeWhich(
  env: Record<string, string | undefined>,
  platform: string,
  isExecutable: (file: string) => boolean,
): (name: string) => string | undefined {
  const windows = platform === 'win32';
  const p = windows ? path.win32 : path.posix;
  const exts = executableExtensions(env, platform);
  return (name: string) => {
    if (name.includes('/') || (windows && name.includes('\\'))) {
      return exts.map((e) => name + e).find(isExecutable);
    }
    for (const dir of pathDirs(env, platform)) {
      for (const ext of exts) {
        const candidate = p.join(dir, name + ext);
        if (isExecutable(candidate)) {
          return candidate;
        }
      }
    }
    return undefined;
  };
}
