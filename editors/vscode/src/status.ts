// `gantry/status` -> status bar text and tooltip. Pure: no `vscode` import.

export type RemoteHealth = 'up' | 'down' | 'probing';

export interface StatusCounts {
  documents?: number;
  reviewing?: number;
  indexing?: number;
  findings?: number;
  queued?: number;
  parked?: number;
  dead?: number;
  runningLocally?: number;
}

/** The params of the server's `gantry/status` notification. */
export interface GantryStatus {
  state: 'ready' | 'busy' | 'queued' | 'degraded' | 'offline' | string;
  message?: string;
  counts?: StatusCounts;
  remotes?: Record<string, RemoteHealth | string>;
}

/** What the client itself knows: the server process may be missing, starting, or stopped. */
export type ClientPhase = 'starting' | 'running' | 'stopped' | 'missing';

export interface StatusView {
  text: string;
  tooltip: string;
  /** Drives the item's background: warning for degraded work, error when nothing works. */
  level: 'normal' | 'warning' | 'error';
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

export function downRemotes(status: GantryStatus): string[] {
  return Object.entries(status.remotes ?? {})
    .filter(([, health]) => health === 'down')
    .map(([name]) => name);
}

export function statusText(status: GantryStatus): { text: string; level: StatusView['level'] } {
  const counts = status.counts ?? {};
  const queued = counts.queued ?? 0;
  switch (status.state) {
    case 'ready':
      return { text: '$(check) Gantry', level: 'normal' };
    case 'busy':
      if (counts.reviewing) {
        return { text: '$(sync~spin) Gantry: reviewing', level: 'normal' };
      }
      if (counts.indexing) {
        return { text: '$(sync~spin) Gantry: indexing', level: 'normal' };
      }
      return { text: '$(sync~spin) Gantry', level: 'normal' };
    case 'queued':
      return { text: `$(clock) Gantry: ${queued} queued`, level: 'normal' };
    case 'degraded':
    case 'offline': {
      if (downRemotes(status).length > 0) {
        if ((counts.runningLocally ?? 0) > 0 || queued === 0) {
          return { text: '$(warning) Gantry: remote down, running locally', level: 'warning' };
        }
        return { text: `$(warning) Gantry: remote down, ${queued} queued`, level: 'warning' };
      }
      return { text: `$(warning) Gantry: ${status.state}`, level: 'warning' };
    }
    default:
      return { text: `$(question) Gantry: ${status.state}`, level: 'normal' };
  }
}

export function statusTooltip(status: GantryStatus): string {
  const counts = status.counts ?? {};
  const lines = [`Gantry: ${status.message || status.state}`];
  const remotes = Object.entries(status.remotes ?? {});
  lines.push(
    remotes.length === 0
      ? 'Remotes: none configured (local review only)'
      : 'Remotes: ' + remotes.map(([name, health]) => `${name} ${health}`).join(', '),
  );
  lines.push(
    `Queue: ${counts.queued ?? 0} queued, ${counts.parked ?? 0} parked, ${counts.dead ?? 0} dead` +
      ((counts.runningLocally ?? 0) > 0 ? `, ${counts.runningLocally} running locally` : ''),
  );
  if (counts.documents !== undefined || counts.findings !== undefined) {
    lines.push(
      `Findings: ${counts.findings ?? 0} in ${plural(counts.documents ?? 0, 'open file')}`,
    );
  }
  lines.push('Click to show the queue.');
  return lines.join('\n');
}

export function statusView(phase: ClientPhase, status?: GantryStatus, detail?: string): StatusView {
  if (phase === 'missing') {
    return {
      text: '$(error) Gantry: server not found',
      tooltip: (detail ?? 'Gantry: the language server was not found.') + '\nClick for details.',
      level: 'error',
    };
  }
  if (phase === 'stopped') {
    return {
      text: '$(error) Gantry: stopped',
      tooltip:
        (detail ? `${detail}\n` : '') +
        'The Gantry server stopped. See "Gantry: Show Output"; "Gantry: Restart Server" starts it again.',
      level: 'error',
    };
  }
  if (phase === 'starting' || status === undefined) {
    return { text: '$(sync~spin) Gantry', tooltip: 'Gantry: starting the server', level: 'normal' };
  }
  const { text, level } = statusText(status);
  return { text, tooltip: statusTooltip(status), level };
}
