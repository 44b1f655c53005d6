/**
 * Settings are read in one place: bin.ts hands process.env to main(), which reads it (loadConfig) and passes
 * a Config down. No other source file reads process.env, so every setting is in `trove-server --help` and tests
 * can build a server from a Config alone.
 */
import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const SRC = fileURLToPath(new URL('../src', import.meta.url));
const READERS = ['bin.ts'];

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

describe('environment', () => {
  it('only bin.ts touches process.env (it hands it to main)', () => {
    const readers = sources(SRC)
      .filter((f) => /\bprocess\.env\b/.test(readFileSync(f, 'utf8')))
      .map((f) => relative(SRC, f))
      .sort();
    expect(readers).toEqual(READERS);
  });
});
