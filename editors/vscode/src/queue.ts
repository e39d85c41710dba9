// `gantry.queueStatus` -> quick pick items. Pure: no `vscode` import.

export interface QueueJob {
  id: number;
  key?: string;
  kind: string;
  state: string;
  attempts?: number;
  maxAttempts?: number;
  error?: string | null;
  notBefore?: number | null;
  updatedAt?: number;
}

export interface QueueStatus {
  state: string;
  message?: string;
  remotes?: Record<string, string>;
  counts?: Record<string, number>;
  jobs?: QueueJob[];
}

export interface QueueItem {
  label: string;
  description?: string;
  detail?: string;
  /** What choosing it does. */
  action: 'retryOne' | 'retryAll' | 'none';
  jobId?: number;
}

const ICONS: Record<string, string> = {
  pending: '$(clock)',
  leased: '$(sync~spin)',
  done: '$(pass)',
  parked: '$(debug-pause)',
  dead: '$(error)',
  cancelled: '$(circle-slash)',
};

export const RETRYABLE = new Set(['dead', 'parked']);

function when(seconds: number): string {
  return new Date(seconds * 1000).toLocaleTimeString();
}

export function queueTitle(status: QueueStatus): string {
  return `Gantry queue: ${status.message || status.state}`;
}

export function queueItems(status: QueueStatus): QueueItem[] {
  const jobs = status.jobs ?? [];
  const items: QueueItem[] = [];
  const stuck = jobs.filter((job) => RETRYABLE.has(job.state)).length;
  if (stuck > 1) {
    items.push({
      label: `$(refresh) Retry all ${stuck} dead and parked jobs`,
      action: 'retryAll',
    });
  }
  for (const job of jobs) {
    const attempts = job.maxAttempts ? `attempt ${job.attempts ?? 0}/${job.maxAttempts}` : undefined;
    const details = [
      job.error ? job.error : undefined,
      job.notBefore ? `not before ${when(job.notBefore)}` : undefined,
      RETRYABLE.has(job.state) ? 'Choose to retry it.' : undefined,
    ].filter(Boolean);
    items.push({
      label: `${ICONS[job.state] ?? '$(circle-outline)'} #${job.id} ${job.kind}`,
      description: [job.state, attempts].filter(Boolean).join(' · '),
      detail: details.length ? details.join(' · ') : undefined,
      action: RETRYABLE.has(job.state) ? 'retryOne' : 'none',
      jobId: job.id,
    });
  }
  if (jobs.length === 0) {
    items.push({ label: '$(check) The queue is empty', action: 'none' });
  }
  return items;
}
