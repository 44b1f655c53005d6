import type { TroveEvent } from 'trove-sdk';
import { dataOf } from './event-source';

/** One line about the event, from the fields the protocol documents for its type. */
export function summarize(e: TroveEvent): string {
  const d = dataOf(e);
  const s = (k: string) => (d[k] === undefined || d[k] === null ? '' : String(d[k]));
  // As a string: the server may send types newer than the SDK's union (files.changed, dir.*).
  switch (e.type as string) {
    case 'file.written': {
      // Size and the API call (`write`/`upload`) when the event has them; a command's changes may not know the size.
      const details = [
        d.sizeBytes === undefined || d.sizeBytes === null ? '' : `${s('sizeBytes')} B`,
        d.source === 'exec' ? '' : s('source'),
      ];
      const shown = details.filter(Boolean).join(', ');
      return shown ? `${s('path')} (${shown})` : s('path');
    }
    case 'file.deleted':
    case 'dir.created':
    case 'dir.deleted':
      return s('path');
    case 'files.changed':
      return summarizeChanges(d);
    case 'exec.completed':
      return `${s('command')} → exit ${s('exitCode')} in ${s('durationMs')} ms`;
    case 'process.started':
      return s('command');
    case 'process.exited':
      return `exit ${s('exitCode')}${d.exitReason && d.exitReason !== 'exited' ? ` (${s('exitReason')})` : ''}`;
    case 'snapshot.created':
      return `${s('snapshotId')}${d.label ? ` “${s('label')}”` : ''}`;
    case 'snapshot.restored':
      return `${s('snapshotId')}: ${s('filesRestored')} files`;
    case 'snapshot.deleted':
      return s('snapshotId');
    case 'namespace.deleted':
      return s('namespace');
    case 'workspace.created':
      return s('name');
    case 'key.created':
      return `${s('name')} (${s('keyId')})`;
    case 'key.revoked':
      return s('keyId');
    case 'webhook.test':
      return s('message');
    default:
      return '';
  }
}

const COUNT_LABELS: [key: string, label: string][] = [
  ['written', 'written'],
  ['deleted', 'deleted'],
  ['dirsCreated', 'folders created'],
  ['dirsDeleted', 'folders deleted'],
];

/**
 * The summary a command's changes end with once they pass the per-command cap: how many paths it
 * changed per kind (in `data` itself, or in `data.counts`), and how many have their own event.
 */
function summarizeChanges(d: Record<string, unknown>): string {
  const counts = (typeof d.counts === 'object' && d.counts !== null ? d.counts : d) as Record<string, unknown>;
  const parts = COUNT_LABELS.flatMap(([key, label]) => {
    const n = counts[key];
    return typeof n === 'number' && n > 0 ? [`${count(n)} ${label}`] : [];
  });
  const total = typeof d.total === 'number' ? `${count(d.total)} paths changed` : '';
  const head = [total, parts.join(', ')].filter(Boolean).join(': ') || 'files changed';
  const first = typeof d.recorded === 'number' ? `the first ${count(d.recorded)}` : 'only the first ones';
  const truncated = d.truncated === true ? ` (truncated: ${first} have their own event)` : '';
  const incomplete = d.incomplete === true ? ' (incomplete: some changes could not be seen)' : '';
  return head + truncated + incomplete;
}

function count(n: number): string {
  return n.toLocaleString('en-US');
}
