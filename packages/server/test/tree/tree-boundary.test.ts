/**
 * The boundary of the tree module, checked on the source: outside src/tree/,
 * no file may call an fs function that takes a path, except the files listed
 * here, which only ever touch paths the server itself made (never a tenant's
 * tree). Descriptor-based calls (read, write, fsync, fstat, fchown, close…)
 * are allowed everywhere: a descriptor was resolved beneath a namespace root.
 */
import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const SRC = fileURLToPath(new URL('../../src', import.meta.url));

/** Files allowed to call path-taking fs functions, and why none of those paths is a tenant's. */
const SERVER_PATHS_ONLY: Record<string, string> = {
  'context.ts': 'creates and chmods the data dir',
  'db/index.ts': 'the SQLite file in the data dir',
  'webhooks/secret-box.ts': 'the webhook secret key file in the data dir',
  'dashboard/routes.ts': 'the built dashboard assets shipped with the server',
  'namespaces/service.ts': 'the server-made directories above namespace roots (workspaces/<id>/namespaces/<ns>)',
  'snapshots/blob-store.ts': 'the snapshot blob directory in the data dir',
  'snapshots/tree-swap.ts': 'the .trees journal directories and namespace roots, all server-made',
  'sandbox/bwrap.ts': 'host system paths bound read-only into the sandbox (/usr, /etc…)',
  'sandbox/cgroups.ts': 'the cgroup file system',
  'sandbox/runner.ts': "the sandbox runtime dir (passwd, seccomp) and the namespace root's own mode and owner",
  'sandbox/launch.ts': "the runtime dir (the seccomp filter) and /proc (a sandbox's process tree, to signal it)",
  'sandbox/pids.ts': "/proc/<pid>/stat (a process's state and parent: the kill sweep, cgroup ancestry)",
  'sandbox/launcher-main.ts': "a background process's output directory (server-made, under <data>/processes)",
  'sandbox/ring-writer.ts': "a background process's output ring files (server-made, under <data>/processes)",
  'processes/output-store.ts': "background processes' output ring files (server-made, under <data>/processes)",
  'processes/control.ts':
    "a stdin request's file in a background process's output directory (server-made, under <data>/processes; the name must be stdin-<32 hex>)",
  'sandbox/launcher.ts': 'the launcher script shipped with the server',
  'sandbox/reaper.ts': 'stale sandbox runtime dirs in the temp dir',
  'changes/watcher.ts':
    "the change tracker's marker directory (server-made, directly in the data dir, never below a namespace tree)",
};

/** fs functions that take a path (or resolve one); the fd-based ones are not listed. */
const PATH_FUNCTIONS = [
  'access',
  'appendFile',
  'chmod',
  'chown',
  'copyFile',
  'cp',
  'createReadStream',
  'createWriteStream',
  'exists',
  'lchown',
  'link',
  'lstat',
  'lutimes',
  'mkdir',
  'mkdtemp',
  'open',
  'opendir',
  'readdir',
  'readFile',
  'readlink',
  'realpath',
  'rename',
  'rm',
  'rmdir',
  'stat',
  'statfs',
  'symlink',
  'truncate',
  'unlink',
  'utimes',
  'watch',
  'writeFile',
];
const PATH_CALL = new Set(PATH_FUNCTIONS.flatMap((f) => [f, `${f}Sync`]));

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return sources(p);
    return p.endsWith('.ts') ? [p] : [];
  });
}

/** The path-taking fs calls of a source file: named imports used, and `fs.x(` / `fsp.x(` / `promises.x(` calls. */
function pathCalls(text: string): string[] {
  const found = new Set<string>();
  const namespaces = new Set<string>();
  const importRe = /import\s+([^;]+?)\s+from\s+'(node:fs|node:fs\/promises|fs|fs\/promises)'/g;
  for (const m of text.matchAll(importRe)) {
    const clause = m[1]!;
    const def = /^(\w+)/.exec(clause.replace(/^type\s+/, ''));
    if (def && def[1] !== 'type') namespaces.add(def[1]!);
    const star = /\*\s+as\s+(\w+)/.exec(clause);
    if (star) namespaces.add(star[1]!);
    const named = /\{([^}]*)\}/.exec(clause);
    for (const part of named ? named[1]!.split(',') : []) {
      const [orig, alias] = part
        .trim()
        .replace(/^type\s+/, '')
        .split(/\s+as\s+/);
      if (!orig) continue;
      if (orig === 'promises') namespaces.add(alias ?? orig);
      else if (PATH_CALL.has(orig) && new RegExp(`\\b${alias ?? orig}\\(`).test(text)) found.add(orig);
    }
  }
  for (const ns of namespaces) {
    for (const m of text.matchAll(new RegExp(`\\b${ns}\\.(?:promises\\.)?(\\w+)\\(`, 'g')))
      if (PATH_CALL.has(m[1]!)) found.add(m[1]!);
  }
  return [...found].sort();
}

describe('tree boundary', () => {
  const files = sources(SRC)
    .map((p) => relative(SRC, p))
    .filter((p) => !p.startsWith('tree/'));

  it('finds path-taking fs calls (the scanner works)', () => {
    expect(
      pathCalls("import fs, { lstatSync as l } from 'node:fs';\nfs.readdirSync(x); l(y); fs.closeSync(3);"),
    ).toEqual(['lstatSync', 'readdirSync']);
    expect(pathCalls("import { promises as fsp } from 'node:fs';\nawait fsp.rm(p);")).toEqual(['rm']);
    expect(pathCalls("import * as fsp from 'node:fs/promises';\nawait fsp.open(p);")).toEqual(['open']);
    expect(pathCalls("import fs from 'node:fs';\nfs.fsyncSync(3); fs.fstatSync(3); fs.writev(3, [], cb);")).toEqual([]);
  });

  it('no file outside src/tree/ hands a path to fs unless it only touches server-made paths', () => {
    const offenders: string[] = [];
    for (const file of files) {
      const calls = pathCalls(readFileSync(join(SRC, file), 'utf8'));
      if (calls.length > 0 && !(file in SERVER_PATHS_ONLY)) offenders.push(`${file}: ${calls.join(', ')}`);
    }
    expect(offenders).toEqual([]);
  });

  it('the files that work on tenant trees use descriptors only', () => {
    for (const file of [
      'files/service.ts',
      'files/routes.ts',
      'http/send-file.ts',
      'snapshots/archive-create.ts',
      'snapshots/archive-extract.ts',
      'snapshots/service.ts',
    ]) {
      expect(file in SERVER_PATHS_ONLY, file).toBe(false);
      expect(pathCalls(readFileSync(join(SRC, file), 'utf8')), file).toEqual([]);
    }
  });

  it('every listed exception still exists', () => {
    for (const file of Object.keys(SERVER_PATHS_ONLY)) expect(files, file).toContain(file);
  });
});
