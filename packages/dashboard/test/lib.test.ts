/**
 * Pure helpers of the dashboard: time stamps, paths, namespace names, byte sizes, and how an
 * event is shown (its source, the command behind it, its summary, its wire JSON).
 */
import { describe, expect, it } from 'vitest';
import type { TroveEvent } from 'trove-sdk';
import { formatStamp } from '../src/lib/time.js';
import { baseName, imageType, namespaceProblem, parentDir } from '../src/lib/paths.js';
import { formatBytes } from '../src/lib/bytes.js';
import { commandOf, matchesSource, sourceBadge } from '../src/lib/event-source.js';
import { summarize } from '../src/lib/event-summary.js';
import { toWire } from '../src/lib/wire-json.js';

describe('formatStamp', () => {
  const now = new Date(2026, 10, 25, 15, 0, 0); // local time
  it('prints HH:MM:SS for today in local time', () => {
    expect(formatStamp(new Date(2026, 10, 25, 9, 5, 7).toISOString(), now)).toBe('09:05:07');
  });
  it('prints MM-DD HH:MM:SS for other days', () => {
    expect(formatStamp(new Date(2026, 10, 24, 23, 59, 59).toISOString(), now)).toBe('11-24 23:59:59');
    expect(formatStamp(new Date(2025, 0, 2, 3, 4, 5).toISOString(), now)).toBe('01-02 03:04:05');
  });
  it('handles missing and unparsable values', () => {
    expect(formatStamp(null, now)).toBe('—');
    expect(formatStamp('yesterday-ish', now)).toBe('yesterday-ish');
  });
});

describe('paths', () => {
  it('knows parents, names and image types', () => {
    expect(parentDir('workspace/a/b.txt')).toBe('workspace/a/');
    expect(parentDir('workspace/a/')).toBe('workspace/');
    expect(parentDir('workspace/b.txt')).toBe('workspace/');
    expect(baseName('workspace/a/b.txt')).toBe('b.txt');
    expect(imageType('x/Photo.JPG')).toBe('image/jpeg');
    expect(imageType('notes.md')).toBeNull();
  });
  it('applies the protocol namespace rule', () => {
    expect(namespaceProblem('team-1.prod_x')).toBeNull();
    expect(namespaceProblem('..')).not.toBeNull();
    expect(namespaceProblem('.')).not.toBeNull();
    expect(namespaceProblem('a/b')).not.toBeNull();
    expect(namespaceProblem('x'.repeat(65))).not.toBeNull();
    expect(namespaceProblem('')).not.toBeNull();
  });
});

describe('formatBytes', () => {
  it('uses binary units', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(3 * 1024 * 1024)).toBe('3.0 MiB');
    expect(formatBytes(null)).toBe('—');
  });
});

/** An event as the SDK hands it over (camelCased), of any type, known to the SDK's union or newer. */
function event(type: string, data: Record<string, unknown>, namespace: string | null = 'ns-1'): TroveEvent {
  return {
    id: 'evt-1',
    eventId: 'evt-1',
    type,
    apiVersion: '2026-04-30',
    workspaceId: 'ws-1',
    namespace,
    createdAt: '2026-12-07T08:00:00.000Z',
    data,
  } as unknown as TroveEvent;
}

describe('event sources', () => {
  const byExec = event('file.written', { path: 'workspace/out.txt', sizeBytes: 3, source: 'exec', execId: 'exec-7' });
  const byProcess = event('file.deleted', { path: 'workspace/old.txt', source: 'exec', processId: 'proc-9' });
  const byApi = event('file.written', { path: 'workspace/a.txt', sizeBytes: 1, source: 'upload' });
  const keyCreated = event('key.created', { keyId: 'key-1', name: 'k' }, null);
  const exitedProcess = event('process.exited', { processId: 'proc-9', exitCode: 0 });

  it('tells changes made by commands from those made through the API', () => {
    expect([byExec, byProcess, byApi].map(sourceBadge)).toEqual(['exec', 'exec', 'api']);
    expect(sourceBadge(event('file.deleted', { path: 'workspace/x', source: 'api' }))).toBe('api');
    // A change from a server that did not say: the files API's.
    expect(sourceBadge(event('file.deleted', { path: 'workspace/x' }))).toBe('api');
    expect(sourceBadge(event('files.changed', { source: 'exec', truncated: true }))).toBe('exec');
    // Not a change to a tree: no badge.
    expect(sourceBadge(keyCreated)).toBeNull();
  });

  it('names the command behind a change: a process before an exec', () => {
    expect(commandOf(byExec)).toEqual({ kind: 'exec', id: 'exec-7' });
    expect(commandOf(byProcess)).toEqual({ kind: 'process', id: 'proc-9' });
    expect(commandOf(byApi)).toBeNull();
    // Not a change, but its process is named all the same.
    expect([sourceBadge(exitedProcess), commandOf(exitedProcess)]).toEqual([null, { kind: 'process', id: 'proc-9' }]);
  });

  it('filters by source', () => {
    const all = [byExec, byProcess, byApi, keyCreated];
    expect(all.filter((e) => matchesSource(e, ''))).toHaveLength(4);
    expect(all.filter((e) => matchesSource(e, 'exec'))).toEqual([byExec, byProcess]);
    // As the server's ?source=: events without a source match no source filter.
    expect(all.filter((e) => matchesSource(e, 'api'))).toEqual([byApi]);
  });
});

describe('summarize', () => {
  it('describes file changes with what the event knows', () => {
    expect(summarize(event('file.written', { path: 'workspace/a.txt', sizeBytes: 12, source: 'write' }))).toBe(
      'workspace/a.txt (12 B, write)',
    );
    expect(
      summarize(event('file.written', { path: 'workspace/b.txt', sizeBytes: 3, source: 'exec', execId: 'exec-1' })),
    ).toBe('workspace/b.txt (3 B)');
    expect(summarize(event('file.written', { path: 'workspace/c.txt', source: 'exec' }))).toBe('workspace/c.txt');
    expect(summarize(event('file.deleted', { path: 'workspace/d.txt', source: 'exec' }))).toBe('workspace/d.txt');
  });

  it('summarises a command that changed more paths than the cap', () => {
    expect(
      summarize(
        event('files.changed', {
          source: 'exec',
          execId: 'exec-2',
          written: 1,
          deleted: 10_000,
          dirsCreated: 0,
          dirsDeleted: 1,
          recorded: 1000,
          total: 10_002,
          truncated: true,
        }),
      ),
    ).toBe(
      '10,002 paths changed: 1 written, 10,000 deleted, 1 folders deleted (truncated: the first 1,000 have their own event)',
    );
    expect(summarize(event('files.changed', { counts: { deleted: 3 }, truncated: true, incomplete: true }))).toBe(
      '3 deleted (truncated: only the first ones have their own event) (incomplete: some changes could not be seen)',
    );
    expect(summarize(event('files.changed', { written: 2, dirsCreated: 1, truncated: false }))).toBe(
      '2 written, 1 folders created',
    );
  });

  it('keeps the other types one line each', () => {
    expect(summarize(event('exec.completed', { command: 'ls', exitCode: 0, durationMs: 12 }))).toBe(
      'ls → exit 0 in 12 ms',
    );
    expect(summarize(event('process.exited', { processId: 'proc-1', exitCode: 143, exitReason: 'killed' }))).toBe(
      'exit 143 (killed)',
    );
    expect(summarize(event('snapshot.restored', { snapshotId: 'snap-1', filesRestored: 4 }))).toBe('snap-1: 4 files');
    expect(summarize(event('something.new', { x: 1 }))).toBe('');
  });
});

describe('toWire', () => {
  it('gives back the snake_case JSON the server sent', () => {
    const wire = {
      id: 'evt-1',
      event_id: 'evt-1',
      type: 'file.written',
      api_version: '2026-04-30',
      workspace_id: 'ws-1',
      namespace: 'ns-1',
      created_at: '2026-12-07T08:00:00.000Z',
      data: {
        path: 'workspace/out.txt',
        size_bytes: 3,
        source: 'exec',
        exec_id: 'exec-7',
        command_sha256: 'ab',
        list: [{ files_restored: 1 }],
      },
    };
    const camel = event('file.written', {
      path: 'workspace/out.txt',
      sizeBytes: 3,
      source: 'exec',
      execId: 'exec-7',
      commandSha256: 'ab',
      list: [{ filesRestored: 1 }],
    });
    expect(toWire(camel)).toEqual(wire);
  });
});
