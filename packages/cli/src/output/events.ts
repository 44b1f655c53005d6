/** One-line summaries of events, shared by `tail` and `events list`. */
import type { TroveEvent } from 'trove-sdk';
import type { Palette } from './color.js';
import { formatBytes, formatDuration } from './format.js';
import { toWire } from './json.js';

export function summarizeEvent(ev: TroveEvent): string {
  const d = ev.data as Record<string, unknown>;
  switch (ev.type) {
    case 'file.written':
      if (ev.data.source !== 'exec') return `${ev.data.path} (${formatBytes(ev.data.sizeBytes)}, ${ev.data.source})`;
      return `${ev.data.path} (${ev.data.sizeBytes === null ? 'size unknown' : formatBytes(ev.data.sizeBytes)}, exec${by(ev.data)})`;
    case 'file.deleted':
      return `${ev.data.path}${ev.data.source === 'exec' ? ` (exec${by(ev.data)})` : ''}`;
    case 'dir.created':
    case 'dir.deleted':
      return `${ev.data.path}/ (exec${by(ev.data)})`;
    case 'files.changed': {
      const d2 = ev.data;
      const parts = [`${d2.written} written`, `${d2.deleted} deleted`];
      if (d2.dirsCreated) parts.push(`${d2.dirsCreated} dirs created`);
      if (d2.dirsDeleted) parts.push(`${d2.dirsDeleted} dirs deleted`);
      const cut = d2.truncated ? `, first ${d2.recorded} listed` : '';
      return `${d2.total} paths: ${parts.join(', ')}${cut}${d2.incomplete ? ' (incomplete)' : ''}${by(d2).replace(/^, /, ' — ')}`;
    }
    case 'exec.completed': {
      const cmd = ev.data.command.replace(/\s+/g, ' ');
      return `exit ${ev.data.exitCode} in ${formatDuration(ev.data.durationMs)}: ${cmd.length > 80 ? cmd.slice(0, 79) + '…' : cmd}`;
    }
    case 'process.started': {
      const cmd = ev.data.command.replace(/\s+/g, ' ');
      return `${ev.data.processId}: ${cmd.length > 80 ? cmd.slice(0, 79) + '…' : cmd}`;
    }
    case 'process.exited':
      return `${ev.data.processId}: ${ev.data.exitReason} ${ev.data.exitCode}${ev.data.signal ? ` (${ev.data.signal})` : ''} after ${formatDuration(ev.data.durationMs)}`;
    case 'snapshot.created':
      return ev.data.label ? `${ev.data.snapshotId} "${ev.data.label}"` : ev.data.snapshotId;
    case 'snapshot.restored':
      return `${ev.data.snapshotId}: ${ev.data.filesRestored} files`;
    case 'snapshot.deleted':
      return ev.data.snapshotId;
    case 'namespace.deleted':
      return ev.data.namespace;
    case 'workspace.created':
      return ev.data.name;
    case 'key.created':
      return `${ev.data.keyId} "${ev.data.name}"`;
    case 'key.revoked':
      return ev.data.keyId;
    case 'webhook.test':
      return ev.data.message;
    default:
      return JSON.stringify(toWire(d));
  }
}

/** ", exec-…" / ", proc-…": the command that made a change. */
function by(d: { execId?: string; processId?: string }): string {
  const id = d.execId ?? d.processId;
  return id ? `, ${id}` : '';
}

export function colorType(type: string, c: Palette): string {
  if (type.startsWith('file.') || type.startsWith('files.') || type.startsWith('dir.')) return c.cyan(type);
  if (type.startsWith('exec.') || type.startsWith('process.')) return c.magenta(type);
  if (type.startsWith('snapshot.')) return c.blue(type);
  if (type.startsWith('key.') || type.startsWith('namespace.') || type.startsWith('workspace.')) return c.yellow(type);
  return c.green(type);
}
