/**
 * The built package runs where Node's globals do not exist (edge runtimes): no
 * `node:` imports, no Buffer, and the client works with `process` removed.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type StartedServer } from '../../../test/helpers/server.js';

const dist = fileURLToPath(new URL('../dist', import.meta.url));
const fixture = fileURLToPath(new URL('./fixtures/edge-runtime.mjs', import.meta.url));

function jsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? jsFiles(join(dir, e.name)) : e.name.endsWith('.js') ? [join(dir, e.name)] : [],
  );
}

let server: StartedServer;
beforeAll(async () => {
  server = await startServer();
});
afterAll(async () => {
  await server?.close();
});

describe('portability', () => {
  it('dist imports nothing but its own relative modules', () => {
    const files = jsFiles(dist);
    expect(files.length).toBeGreaterThan(10);
    for (const file of files) {
      // Code only: comments may mention node:crypto or process.env in examples.
      const src = readFileSync(file, 'utf8')
        .replace(/\/\*[\s\S]*?\*\//g, '')
        .replace(/^\s*\/\/.*$/gm, '');
      const specifiers = [...src.matchAll(/(?:^|\s)(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]/g)].map(
        (m) => m[1]!,
      );
      for (const s of specifiers) expect(s, `${file} imports ${s}`).toMatch(/^\.\.?\//);
      // A dynamic import names a module (`import('x')`); `snapshots.import(data)` is a method.
      expect(src, file).not.toMatch(/\brequire\(|(?<![.\w]\s*|async\s)\bimport\(\s*['"`]|\bBuffer\b|\bDeno\.(?!env)/);
      // process is only ever reached as a property of globalThis, which may lack it.
      expect(src, file).not.toMatch(/(?<![.\w])process\./);
    }
  });

  it('works without process or require, like an edge runtime', () => {
    const out = execFileSync(
      process.execPath,
      [fixture, pathToFileURL(join(dist, 'index.js')).href, server.baseUrl, server.runtimeKey],
      { encoding: 'utf8' },
    );
    const report = JSON.parse(out) as Record<string, unknown>;
    expect(report.error).toBeUndefined();
    expect(report).toEqual({
      processVisible: false,
      write: { path: 'workspace/edge.txt', sizeBytes: 13, etag: expect.stringMatching(/^"[0-9a-f.-]+"$/) },
      readText: 'from the edge',
      uploadProgressLast: 100_000,
      listDir: ['edge.bin', 'edge.txt'],
      verifyAsync: 'evt-1',
      verifySync: 'crypto_unavailable',
      noKey: 'TroveError',
    });
  });
});
