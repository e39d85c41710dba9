// Settings as the server sees them, and which changes need a restart. Pure: no `vscode` import.

/** Settings only the extension reads: never sent to the server (it would call them unknown). */
export const CLIENT_ONLY_PREFIXES = ['gantry.server.', 'gantry.trace.'];

/** Settings the server reads only at start-up: changing one restarts it. */
export const RESTART_SETTINGS = [
  'gantry.server.command',
  'gantry.store',
  'gantry.index',
  'gantry.inference',
  'gantry.execution',
];

export function needsRestart(affects: (section: string) => boolean): boolean {
  return RESTART_SETTINGS.some((section) => affects(section));
}

/** The values a user set in one scope, most specific first (as `WorkspaceConfiguration.inspect`). */
export interface Inspected {
  workspaceFolderValue?: unknown;
  workspaceValue?: unknown;
  globalValue?: unknown;
}

/**
 * The value the user set, from the most specific scope; with `userOnly`, from user settings alone.
 * Restricted settings are read `userOnly`: they are machine-scoped, so VS Code ignores them in a
 * workspace's .vscode/settings.json, and this keeps them out even where it would not.
 */
export function explicitValue(inspected: Inspected | undefined, userOnly = false): unknown {
  if (!inspected) {
    return undefined;
  }
  if (userOnly) {
    return inspected.globalValue;
  }
  for (const value of [inspected.workspaceFolderValue, inspected.workspaceValue, inspected.globalValue]) {
    if (value !== undefined) {
      return value;
    }
  }
  return undefined;
}

/**
 * The `gantry` section for `workspace/configuration`: only the values the user set, nested by
 * their dotted names (`gantry.ruff.extendSelect` -> {ruff: {extendSelect}}). Defaults are left
 * out on purpose: the server has the same defaults, and sending them would override the
 * project's own `[tool.gantry]` settings.
 */
export function serverSettings(
  keys: readonly string[],
  valueOf: (key: string) => unknown,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of keys) {
    if (!key.startsWith('gantry.') || CLIENT_ONLY_PREFIXES.some((p) => key.startsWith(p))) {
      continue;
    }
    const value = valueOf(key);
    if (value === undefined) {
      continue;
    }
    const parts = key.split('.').slice(1);
    let node = out;
    for (const part of parts.slice(0, -1)) {
      if (typeof node[part] !== 'object' || node[part] === null) {
        node[part] = {};
      }
      node = node[part] as Record<string, unknown>;
    }
    node[parts[parts.length - 1]] = value;
  }
  return out;
}

/** The setting keys an extension manifest contributes (package.json `contributes.configuration`). */
export function contributedKeys(packageJSON: any): string[] {
  const configuration = packageJSON?.contributes?.configuration;
  const sections = Array.isArray(configuration) ? configuration : [configuration];
  return sections.flatMap((section: any) => Object.keys(section?.properties ?? {}));
}

/**
 * The settings a repository may not choose (what runs, where code and credentials go, which files
 * are written, how strong the isolation is): package.json's `restrictedConfigurations`.
 */
export function restrictedKeys(packageJSON: any): Set<string> {
  return new Set(packageJSON?.capabilities?.untrustedWorkspaces?.restrictedConfigurations ?? []);
}

/** Whether a server's initialize result offers a command (commands light up when it does). */
export function serverOffers(capabilities: any, command: string): boolean {
  const commands = capabilities?.executeCommandProvider?.commands;
  return Array.isArray(commands) && commands.includes(command);
}
