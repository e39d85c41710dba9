// The VS Code side of Gantry: starts `gantry serve` through vscode-languageclient, shows its
// `gantry/status` in the status bar, and adds palette commands. The logic that needs no VS Code
// lives in serverCommand.ts, status.ts, settings.ts and queue.ts (tested with Node's runner).
import * as os from 'os';
import * as vscode from 'vscode';
import {
  LanguageClient,
  LanguageClientOptions,
  RevealOutputChannelOn,
  ServerOptions,
  State,
} from 'vscode-languageclient/node';

import { nodeProbes } from './probe';
import { QueueItem, QueueStatus, queueItems, queueTitle } from './queue';
import { Resolved, describeSkip, resolveServerCommand } from './serverCommand';
import { contributedKeys, explicitValue, needsRestart, restrictedKeys, serverOffers, serverSettings } from './settings';
import { ClientPhase, GantryStatus, statusView } from './status';

export { STATUS_NOTIFICATION } from './status-notification';
import { STATUS_NOTIFICATION } from './status-notification';
const EXECUTE_COMMAND = 'workspace/executeCommand';
const RESTART_DEBOUNCE_MS = 500;

/**
 * Python, and the languages the server reviews with a model (AI review). Always listed: the
 * model is configured where VS Code cannot see it cheaply (the user's config file, a trusted
 * gantry.toml), and without one the server reviews nothing in them, quietly. Files only: an
 * untitled buffer has no folder, so no settings or store to review it with. Activation stays
 * Python's (and gantry.toml's): a JavaScript project without a model never starts a server.
 */
export const DOCUMENT_SELECTOR = [
  'python',
  'javascript',
  'javascriptreact',
  'typescript',
  'typescriptreact',
  'go',
  'rust',
].map((language) => ({ scheme: 'file', language }));

/** Client-side palette commands. The server's own `gantry.*` ids are registered by the client. */
export const COMMANDS = {
  restart: 'gantry.client.restartServer',
  showOutput: 'gantry.client.showOutput',
  showQueue: 'gantry.client.showQueue',
  retryQueued: 'gantry.client.retryQueued',
  reviewFile: 'gantry.client.reviewFile',
  reviewWorkspace: 'gantry.client.reviewWorkspace',
  generateTests: 'gantry.client.generateTests',
  dismissFinding: 'gantry.client.dismissFinding',
};

class Gantry {
  client: LanguageClient | undefined;
  phase: ClientPhase = 'starting';
  lastStatus: GantryStatus | undefined;
  missingMessage: string | undefined;
  private toldDistrusted = false;
  private restartTimer: ReturnType<typeof setTimeout> | undefined;
  private starting: Promise<void> | undefined;
  readonly output: vscode.LogOutputChannel;
  readonly statusItem: vscode.StatusBarItem;

  constructor(private readonly context: vscode.ExtensionContext) {
    this.output = vscode.window.createOutputChannel('Gantry', { log: true });
    this.statusItem = vscode.window.createStatusBarItem('gantry.status', vscode.StatusBarAlignment.Left, 10);
    this.statusItem.name = 'Gantry';
    this.statusItem.command = COMMANDS.showQueue;
    context.subscriptions.push(this.output, this.statusItem);
    this.render();
    this.statusItem.show();
  }

  render(detail?: string): void {
    const view = statusView(this.phase, this.lastStatus, detail ?? this.missingMessage);
    this.statusItem.text = view.text;
    this.statusItem.tooltip = view.tooltip;
    this.statusItem.backgroundColor =
      view.level === 'normal'
        ? undefined
        : new vscode.ThemeColor(view.level === 'error' ? 'statusBarItem.errorBackground' : 'statusBarItem.warningBackground');
  }

  async resolveCommand(): Promise<Resolved> {
    const folders = vscode.workspace.workspaceFolders ?? [];
    return resolveServerCommand({
      configured: configuredCommand(),
      trusted: vscode.workspace.isTrusted,
      python: await this.pythonInterpreter(folders[0]?.uri),
      workspaceFolders: folders.filter((f) => f.uri.scheme === 'file').map((f) => f.uri.fsPath),
      home: os.homedir(),
      env: process.env,
      platform: process.platform,
      probes: nodeProbes,
    });
  }

  /** The interpreter the Python extension (ms-python.python) has selected, when it is installed. */
  async pythonInterpreter(resource?: vscode.Uri): Promise<string | undefined> {
    const extension = vscode.extensions.getExtension<any>('ms-python.python');
    if (!extension) {
      return undefined;
    }
    try {
      const api = extension.isActive ? extension.exports : await extension.activate();
      const environments = api?.environments;
      if (environments?.getActiveEnvironmentPath) {
        const active = environments.getActiveEnvironmentPath(resource);
        const resolved = await environments.resolveEnvironment?.(active);
        return resolved?.executable?.uri?.fsPath ?? active?.path;
      }
      return api?.settings?.getExecutionDetails?.(resource)?.execCommand?.[0];
    } catch (error) {
      this.output.warn(`The Python extension's interpreter could not be read: ${error}`);
      return undefined;
    }
  }

  /** Watch the Python extension's interpreter: a new one may have (or lack) Gantry. */
  async watchPython(): Promise<void> {
    const extension = vscode.extensions.getExtension<any>('ms-python.python');
    try {
      const api = extension ? (extension.isActive ? extension.exports : await extension.activate()) : undefined;
      const event = api?.environments?.onDidChangeActiveEnvironmentPath;
      if (typeof event === 'function') {
        this.context.subscriptions.push(
          event(() => {
            const configured = configuredCommand();
            if (!Array.isArray(configured) || configured.length === 0) {
              this.scheduleRestart('the Python interpreter changed');
            }
          }),
        );
      }
    } catch {
      // already reported by pythonInterpreter
    }
  }

  start(): Promise<void> {
    this.starting = this.doStart().finally(() => (this.starting = undefined));
    return this.starting;
  }

  private async doStart(): Promise<void> {
    this.phase = 'starting';
    this.lastStatus = undefined;
    this.missingMessage = undefined;
    this.render();
    this.output.info(
      `Looking for the server (workspace ${vscode.workspace.isTrusted ? 'trusted' : 'not trusted'}): ` +
        'gantry.server.command, the Python extension\'s interpreter, the workspace\'s .venv and venv, ' +
        '~/.local/bin and pipx, PATH.',
    );
    const resolved = await this.resolveCommand();
    for (const skipped of resolved.skipped) {
      this.output.info(`Passed over ${describeSkip(skipped)}`);
    }
    if (!resolved.ok) {
      this.phase = 'missing';
      this.missingMessage = resolved.message;
      // The extension host's PATH is often not the shell's (code-server, remote windows, launchers).
      this.output.info(`PATH as VS Code's extension host sees it: ${process.env.PATH ?? process.env.Path ?? ''}`);
      this.output.error(resolved.message);
      this.render();
      this.showMissing();
      return;
    }
    this.output.info(`Starting the server: ${resolved.description}`);
    if (resolved.distrusted) {
      this.output.warn(resolved.distrusted);
      if (!this.toldDistrusted) {
        this.toldDistrusted = true;
        void vscode.window.showInformationMessage(`Gantry: ${resolved.distrusted}`);
      }
    }
    const folder = vscode.workspace.workspaceFolders?.[0];
    const serverOptions: ServerOptions = {
      command: resolved.command,
      args: resolved.args,
      options: { cwd: folder?.uri.fsPath, env: process.env },
    };
    const keys = contributedKeys(this.context.extension?.packageJSON);
    const restricted = restrictedKeys(this.context.extension?.packageJSON);
    const clientOptions: LanguageClientOptions = {
      documentSelector: DOCUMENT_SELECTOR,
      outputChannel: this.output,
      revealOutputChannelOn: RevealOutputChannelOn.Never,
      synchronize: { configurationSection: 'gantry' },
      middleware: {
        workspace: {
          // Only what the user set, without the client-only settings, and restricted settings
          // from user settings only: see settings.ts.
          configuration: async (params, token, next) => {
            const fallback = await next(params, token);
            return params.items.map((item, index) => {
              if (item.section !== 'gantry') {
                return Array.isArray(fallback) ? fallback[index] : null;
              }
              const scope = item.scopeUri ? vscode.Uri.parse(item.scopeUri) : folder?.uri;
              const config = vscode.workspace.getConfiguration(undefined, scope);
              return serverSettings(keys, (key) => explicitValue(config.inspect(key), restricted.has(key)));
            });
          },
          // The server pulls its settings (above); the copy vscode-languageclient would push is
          // VS Code's whole view, unfiltered, so only the change itself is announced.
          didChangeConfiguration: (_sections, next) => next(undefined),
        },
      },
    };
    const client = new LanguageClient('gantry', 'Gantry', serverOptions, clientOptions);
    this.client = client;
    client.onDidChangeState((event) => {
      if (this.client !== client) {
        return;
      }
      if (event.newState === State.Stopped) {
        this.phase = 'stopped';
      } else if (event.newState === State.Running) {
        this.phase = 'running';
      } else {
        this.phase = 'starting';
      }
      this.render();
    });
    client.onNotification(STATUS_NOTIFICATION, (status: GantryStatus) => {
      if (this.client !== client) {
        return;
      }
      this.lastStatus = status;
      this.phase = 'running';
      this.render();
      this.output.debug(`status: ${status.state}: ${status.message ?? ''}`);
    });
    try {
      await client.start();
      this.phase = 'running';
      this.render();
    } catch (error) {
      this.phase = 'stopped';
      this.output.error(`The server failed to start: ${error}`);
      this.render(`The server failed to start: ${error}`);
    }
  }

  showMissing(): void {
    if (!this.missingMessage) {
      return;
    }
    void vscode.window
      .showErrorMessage(this.missingMessage, 'Open Settings', 'Show Output')
      .then((choice) => {
        if (choice === 'Open Settings') {
          void vscode.commands.executeCommand('workbench.action.openSettings', 'gantry.server.command');
        } else if (choice === 'Show Output') {
          this.output.show();
        }
      });
  }

  async stop(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (client) {
      try {
        await client.stop(5000);
      } catch (error) {
        this.output.warn(`Stopping the server: ${error}`);
      }
    }
  }

  async restart(reason: string): Promise<void> {
    if (this.restartTimer) {
      clearTimeout(this.restartTimer);
      this.restartTimer = undefined;
    }
    if (this.starting) {
      await this.starting;
    }
    this.output.info(`Restarting the server: ${reason}`);
    await this.stop();
    await this.start();
  }

  scheduleRestart(reason: string): void {
    if (this.restartTimer) {
      clearTimeout(this.restartTimer);
    }
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      void this.restart(reason);
    }, RESTART_DEBOUNCE_MS);
  }

  dispose(): void {
    if (this.restartTimer) {
      clearTimeout(this.restartTimer);
    }
  }

  /** A server command, through the running client; undefined (after saying why) when none runs. */
  async execute<T>(command: string, args: unknown[] = []): Promise<T | undefined> {
    const client = this.client;
    if (!client || this.phase !== 'running') {
      if (this.phase === 'missing') {
        this.showMissing();
      } else {
        void vscode.window.showWarningMessage('Gantry: the server is not running; see "Gantry: Show Output".');
      }
      return undefined;
    }
    return client.sendRequest(EXECUTE_COMMAND, { command, arguments: args }) as Promise<T>;
  }

  offers(command: string): boolean {
    return serverOffers(this.client?.initializeResult?.capabilities, command);
  }

  async showQueue(): Promise<void> {
    if (this.phase === 'missing') {
      this.showMissing();
      return;
    }
    let status: QueueStatus | undefined;
    try {
      status = await this.execute<QueueStatus>('gantry.queueStatus');
    } catch (error: any) {
      this.output.warn(`gantry.queueStatus: ${error?.message ?? error}`);
      await vscode.window.showQuickPick([{ label: `$(info) ${error?.message ?? error}` }], {
        title: 'Gantry queue',
      });
      return;
    }
    if (!status) {
      return;
    }
    const picked = await vscode.window.showQuickPick(queueItems(status), {
      title: queueTitle(status),
      placeHolder: 'Dead and parked jobs can be retried',
      matchOnDescription: true,
      matchOnDetail: true,
    });
    if (!picked || picked.action === 'none') {
      return;
    }
    await this.retry(picked);
  }

  async retry(item: Pick<QueueItem, 'action' | 'jobId'>): Promise<void> {
    if (item.action === 'retryOne') {
      const answer = await vscode.window.showInformationMessage(`Gantry: retry job #${item.jobId}?`, 'Retry');
      if (answer !== 'Retry') {
        return;
      }
    }
    const args = item.action === 'retryOne' ? [{ id: item.jobId }] : [];
    const result = await this.execute<{ retried: number }>('gantry.retryQueued', args);
    if (result) {
      void vscode.window.showInformationMessage(
        `Gantry: ${result.retried} job${result.retried === 1 ? '' : 's'} queued again.`,
      );
    }
  }

  activePythonUri(): vscode.Uri | undefined {
    const editor = vscode.window.activeTextEditor;
    if (!editor || editor.document.uri.scheme !== 'file') {
      void vscode.window.showWarningMessage('Gantry: open a file first.');
      return undefined;
    }
    return editor.document.uri;
  }

  async reviewFile(): Promise<void> {
    const uri = this.activePythonUri();
    if (uri) {
      await this.reportErrors('review file', this.execute('gantry.reviewFile', [{ uri: uri.toString() }]));
    }
  }

  async reviewWorkspace(): Promise<void> {
    const result = await this.reportErrors(
      'review workspace',
      vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: 'Gantry: reviewing the workspace' },
        () => this.execute<{ files: number; findings?: number }>('gantry.reviewWorkspace'),
      ),
    );
    if (result) {
      void vscode.window.showInformationMessage(
        `Gantry: reviewed ${result.files} files` +
          (result.findings !== undefined ? `, ${result.findings} findings.` : '.'),
      );
    }
  }

  async generateTests(): Promise<void> {
    if (this.phase === 'running' && !this.offers('gantry.generateTests')) {
      void vscode.window.showInformationMessage(
        'Gantry: test generation is not offered by this server (it has no gantry.generateTests command).',
      );
      return;
    }
    const uri = this.activePythonUri();
    if (!uri) {
      return;
    }
    // The selection, or the cursor (an empty range): the server tests what it touches, the
    // function, method or class around the cursor. It reports progress and the outcome itself.
    const selection = vscode.window.activeTextEditor?.selection;
    const at = (p: vscode.Position) => ({ line: p.line, character: p.character });
    const range = selection
      ? { start: at(selection.start), end: at(selection.end) }
      : { start: { line: 0, character: 0 }, end: { line: 0, character: 0 } };
    await this.reportErrors('generate tests', this.execute('gantry.generateTests', [{ uri: uri.toString(), range }]));
  }

  async dismissFinding(): Promise<void> {
    const uri = this.activePythonUri();
    if (!uri) {
      return;
    }
    const line = vscode.window.activeTextEditor?.selection.active.line;
    const findings = vscode.languages
      .getDiagnostics(uri)
      .filter((d) => d.source?.startsWith('gantry') && (d as any).data?.fingerprint); // ruff's and the model's
    if (findings.length === 0) {
      void vscode.window.showInformationMessage('Gantry: no Gantry findings in this file.');
      return;
    }
    findings.sort((a, b) => Math.abs(a.range.start.line - (line ?? 0)) - Math.abs(b.range.start.line - (line ?? 0)));
    const finding = await vscode.window.showQuickPick(
      findings.map((d) => ({
        label: `${typeof d.code === 'object' ? d.code.value : d.code ?? ''} ${d.message}`.trim(),
        description: `line ${d.range.start.line + 1}`,
        diagnostic: d,
      })),
      { title: 'Gantry: dismiss which finding?' },
    );
    if (!finding) {
      return;
    }
    const verdict = await vscode.window.showQuickPick(
      [
        { label: 'Dismiss', verdict: 'dismissed' },
        { label: 'Mark as false positive', verdict: 'false_positive' },
      ],
      { title: 'Gantry: verdict' },
    );
    if (verdict) {
      await this.reportErrors(
        'dismiss finding',
        this.execute('gantry.dismissFinding', [
          { uri: uri.toString(), fingerprint: (finding.diagnostic as any).data.fingerprint, verdict: verdict.verdict },
        ]),
      );
    }
  }

  /** User-started commands report their failure once; nothing routine pops up. */
  async reportErrors<T>(what: string, work: Thenable<T>): Promise<T | undefined> {
    try {
      return await work;
    } catch (error: any) {
      const message = error?.message ?? String(error);
      this.output.error(`${what}: ${message}`);
      void vscode.window.showErrorMessage(`Gantry: ${what} failed: ${message}`);
      return undefined;
    }
  }
}

/** `gantry.server.command` from user settings: a workspace may not choose what runs. */
function configuredCommand(): unknown {
  return explicitValue(vscode.workspace.getConfiguration('gantry').inspect('server.command'), true);
}

let gantry: Gantry | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const g = new Gantry(context);
  gantry = g;
  const register = (id: string, run: () => unknown) =>
    context.subscriptions.push(vscode.commands.registerCommand(id, run));
  register(COMMANDS.restart, () => g.restart('requested'));
  register(COMMANDS.showOutput, () => g.output.show());
  register(COMMANDS.showQueue, () => g.showQueue());
  register(COMMANDS.retryQueued, () => g.retry({ action: 'retryAll' }));
  register(COMMANDS.reviewFile, () => g.reviewFile());
  register(COMMANDS.reviewWorkspace, () => g.reviewWorkspace());
  register(COMMANDS.generateTests, () => g.generateTests());
  register(COMMANDS.dismissFinding, () => g.dismissFinding());
  context.subscriptions.push(
    vscode.workspace.onDidChangeConfiguration((event) => {
      if (needsRestart((section) => event.affectsConfiguration(section))) {
        g.scheduleRestart('settings changed');
      }
    }),
    vscode.workspace.onDidGrantWorkspaceTrust(() => g.scheduleRestart('the workspace is trusted now')),
    { dispose: () => g.dispose() },
  );
  await g.start();
  void g.watchPython();
}

export async function deactivate(): Promise<void> {
  const g = gantry;
  gantry = undefined;
  if (g) {
    g.dispose();
    await g.stop();
  }
}

/** For tests: the live instance. */
export function _instance(): Gantry | undefined {
  return gantry;
}
