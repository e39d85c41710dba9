// A fake `vscode` module and a fake `vscode-languageclient/node`, enough for activate()'s wiring.
// install() hooks Node's module resolution so `require('vscode')` in the extension gets them.
import Module = require('module');

import { STATUS_NOTIFICATION } from '../src/status-notification';
import { commandSchema, loadSchema, problems } from './schema';

export interface Recorded {
  errors: { message: string; items: string[] }[];
  warnings: string[];
  infos: string[];
  quickPicks: { items: any[]; options: any }[];
  executed: { command: string; args: any[] }[];
}

export class FakeEmitter<T> {
  listeners: ((e: T) => void)[] = [];
  event = (listener: (e: T) => void) => {
    this.listeners.push(listener);
    return { dispose: () => (this.listeners = this.listeners.filter((l) => l !== listener)) };
  };
  fire(e: T) {
    this.listeners.forEach((l) => l(e));
  }
}

/** `settings`: user settings; `workspace.settings`: the workspace's .vscode/settings.json. */
export function makeVscode(
  settings: Record<string, unknown>,
  workspaceFolder: string,
  workspace: { settings?: Record<string, unknown>; trusted?: boolean } = {},
) {
  const workspaceSettings = workspace.settings ?? {};
  const recorded: Recorded = { errors: [], warnings: [], infos: [], quickPicks: [], executed: [] };
  const commands = new Map<string, (...args: any[]) => any>();
  const configChanged = new FakeEmitter<{ affectsConfiguration: (s: string) => boolean }>();
  const trustGranted = new FakeEmitter<void>();
  let quickPickAnswer: (items: any[]) => any = () => undefined;
  let messageAnswer: (message: string, items: string[]) => string | undefined = () => undefined;
  const statusItems: any[] = [];
  const outputLines: string[] = [];
  const uri = (fsPath: string) => ({ fsPath, scheme: 'file', toString: () => 'file://' + fsPath });
  const vscode = {
    StatusBarAlignment: { Left: 1, Right: 2 },
    ProgressLocation: { Notification: 15 },
    ThemeColor: class {
      constructor(public id: string) {}
    },
    Uri: { parse: (s: string) => uri(s.replace(/^file:\/\//, '')), file: uri },
    window: {
      createOutputChannel: (name: string) => {
        const log = (level: string) => (m: string) => outputLines.push(`[${level}] ${m}`);
        return {
          name, appendLine: log('line'), append: log('raw'), info: log('info'), warn: log('warn'),
          error: log('error'), debug: log('debug'), trace: log('trace'), show: () => {}, dispose: () => {},
        };
      },
      createStatusBarItem: () => {
        const item = { text: '', tooltip: '', command: '', name: '', backgroundColor: undefined as any, visible: false,
          show() { this.visible = true; }, hide() { this.visible = false; }, dispose() {} };
        statusItems.push(item);
        return item;
      },
      showErrorMessage: (message: string, ...items: string[]) => {
        recorded.errors.push({ message, items });
        return Promise.resolve(messageAnswer(message, items));
      },
      showWarningMessage: (message: string) => {
        recorded.warnings.push(message);
        return Promise.resolve(undefined);
      },
      showInformationMessage: (message: string, ...items: string[]) => {
        recorded.infos.push(message);
        return Promise.resolve(messageAnswer(message, items));
      },
      showQuickPick: (items: any[], options: any) => {
        recorded.quickPicks.push({ items, options });
        return Promise.resolve(quickPickAnswer(items));
      },
      withProgress: (_options: any, work: () => any) => work(),
      activeTextEditor: undefined as any,
    },
    commands: {
      registerCommand: (id: string, run: (...args: any[]) => any) => {
        if (commands.has(id)) {
          throw new Error(`command '${id}' already exists`);
        }
        commands.set(id, run);
        return { dispose: () => commands.delete(id) };
      },
      executeCommand: (command: string, ...args: any[]) => {
        recorded.executed.push({ command, args });
        return Promise.resolve(commands.get(command)?.(...args));
      },
    },
    workspace: {
      workspaceFolders: [{ uri: uri(workspaceFolder), name: 'ws', index: 0 }],
      getConfiguration: (section?: string) => {
        const full = (key: string) => (section ? `${section}.${key}` : key);
        // Unlike VS Code, which drops workspace values of machine-scoped settings, this hands
        // out whatever the workspace says: the extension must not rely on VS Code for that.
        const merged: Record<string, unknown> = { ...settings, ...workspaceSettings };
        return {
          get: (key: string, fallback?: unknown) => (full(key) in merged ? merged[full(key)] : fallback),
          inspect: (key: string) => ({ globalValue: settings[full(key)], workspaceValue: workspaceSettings[full(key)] }),
        };
      },
      isTrusted: workspace.trusted ?? true,
      onDidGrantWorkspaceTrust: trustGranted.event,
      onDidChangeConfiguration: configChanged.event,
    },
    extensions: { getExtension: (): any => undefined },
    languages: { getDiagnostics: (): any[] => [] },
  };
  return {
    vscode,
    recorded,
    commands,
    statusItems,
    outputLines,
    configChanged,
    trustGranted,
    answerQuickPick: (f: (items: any[]) => any) => (quickPickAnswer = f),
    answerMessage: (f: (message: string, items: string[]) => string | undefined) => (messageAnswer = f),
  };
}

export function makeLanguageClientModule() {
  const clients: FakeClient[] = [];
  /** Where what the tests make the fake server send, or what the extension sends it, does not
   * fit the server's schemas: each test expects none. */
  const contractProblems: string[] = [];
  let responder: (method: string, params: any) => any = () => null;
  let capabilities: any = { executeCommandProvider: { commands: [] } };
  class FakeClient {
    notificationHandlers = new Map<string, (params: any) => void>();
    stateChanged = new FakeEmitter<{ oldState: number; newState: number }>();
    onDidChangeState = this.stateChanged.event;
    started = false;
    stopped = false;
    requests: { method: string; params: any }[] = [];
    initializeResult: any;
    constructor(public id: string, public name: string, public serverOptions: any, public clientOptions: any) {
      clients.push(this);
    }
    onNotification(method: string, handler: (params: any) => void) {
      this.notificationHandlers.set(method, handler);
      return { dispose: () => this.notificationHandlers.delete(method) };
    }
    notify(method: string, params: any) {
      if (method === STATUS_NOTIFICATION) {
        contractProblems.push(...problems(loadSchema('status.json'), params).map((p) => `${method} ${p}`));
      }
      this.notificationHandlers.get(method)?.(params);
    }
    async start() {
      this.started = true;
      this.initializeResult = { capabilities };
      this.stateChanged.fire({ oldState: 3, newState: 2 });
    }
    async stop() {
      this.stopped = true;
      this.stateChanged.fire({ oldState: 2, newState: 1 });
    }
    sendRequest(method: string, params: any) {
      this.requests.push({ method, params });
      const schema = method === 'workspace/executeCommand' ? commandSchema(params.command) : undefined;
      if (schema) {
        contractProblems.push(...problems(schema, params.arguments).map((p) => `${params.command} ${p}`));
      }
      try {
        return Promise.resolve(responder(method, params));
      } catch (error) {
        return Promise.reject(error);
      }
    }
  }
  return {
    module: {
      LanguageClient: FakeClient,
      State: { Stopped: 1, Running: 2, Starting: 3 },
      RevealOutputChannelOn: { Debug: 0, Info: 1, Warn: 2, Error: 3, Never: 4 },
    },
    clients,
    contractProblems,
    respond: (f: (method: string, params: any) => any) => (responder = f),
    setCapabilities: (c: any) => (capabilities = c),
  };
}

/** Make `require(name)` return `value` for the given names; returns an undo function. */
export function hookModules(fakes: Record<string, unknown>): () => void {
  const M = Module as any;
  const original = M._load;
  M._load = function (request: string, parent: unknown, isMain: boolean) {
    if (request in fakes) {
      return fakes[request];
    }
    return original.call(this, request, parent, isMain);
  };
  return () => (M._load = original);
}

/**
 * A fake machine for serverCommand.ts: `files` maps a path to what lies there. `looked` records
 * every path read (stat, with the links it follows; realpath; directory) and `ran` every program
 * run, so a test can show that an untrusted workspace's files were neither. (realpath records the
 * link only: finding where a link leads is how the resolution knows to stop there.)
 */
export type FakeFile =
  | 'gantry' // Gantry's gantry: executable, `--version` answers `gantry 0.1.0`
  | 'other' // another executable named gantry: `--version` answers something else
  | 'noexec' // a file without the executable bit
  | 'python' // an interpreter with Gantry installed
  | 'python-bare' // an interpreter without it
  | { link: string }; // a symbolic link

export function makeProbes(files: Record<string, FakeFile>, dirs: Record<string, string[]> = {}) {
  const looked: string[] = [];
  const ran: string[] = [];
  /** Where `file` leads; `visit` sees each link's target on the way (a stat reads them all). */
  const follow = (file: string, visit: (target: string) => void = () => {}) => {
    let at = file;
    for (let hops = 0; hops < 10; hops++) {
      const entry = files[at];
      if (entry === undefined || typeof entry === 'string') {
        break;
      }
      at = entry.link;
      visit(at);
    }
    return at;
  };
  const kind = (file: string) => {
    const entry = files[follow(file)];
    return typeof entry === 'string' ? entry : undefined;
  };
  const probes = {
    fileState: (file: string) => {
      looked.push(file);
      follow(file, (target) => looked.push(target));
      const k = kind(file);
      return k === undefined ? ('missing' as const) : k === 'noexec' ? ('not-executable' as const) : ('executable' as const);
    },
    realpath: (file: string) => {
      looked.push(file);
      return follow(file);
    },
    listDir: (dir: string) => {
      looked.push(dir);
      return dirs[dir] ?? [];
    },
    gantryVersion: async (file: string) => {
      ran.push(file);
      return kind(file) === 'gantry'
        ? { ok: true as const, version: 'gantry 0.1.0' }
        : { ok: false as const, why: '`gantry --version` answered "gantry, version 2.0": not Gantry\'s gantry' };
    },
    pythonHasGantry: async (python: string) => {
      ran.push(python);
      return kind(python) === 'python';
    },
  };
  return { probes, looked, ran };
}
