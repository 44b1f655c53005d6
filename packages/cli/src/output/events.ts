/** One-line summaries of events, shared by `tail` and `events list`. */
import type { TroveEvent } from 'trove-sdk';
import type { Palette } from './color.js';
import { formatBytes, formatDuration } from './format.js';
import { toWire } from './json.js';

export function summarizeEvent(ev: TroveEvent): string {
  const d = ev.data as Record<string, unknown>;
  switch (ev.type) {
    case 'file.written':
      return `${ev.data.path} (${formatBytes(ev.data.sizeBytes)}, ${ev.data.source})`;
    case 'file.deleted':
      return ev.data.path;
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

export function colorType(type: string, c: Palette): string {
  if (type.startsWith('file.')) return c.cyan(type);
  if (type.startsWith('exec.') || type.startsWith('process.')) return c.magenta(type);
  if (type.startsWith('snapshot.')) return c.blue(type);
  if (type.startsWith('key.') || type.startsWith('namespace.') || type.startsWith('workspace.')) return c.yellow(type);
  return c.green(type);
}
