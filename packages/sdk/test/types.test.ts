/**
 * Type-checks test/types/public-api.ts against the built declarations (dist/*.d.ts,
 * resolved through package.json `exports`, without @types/node) with `tsc --noEmit`.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const project = fileURLToPath(new URL('./types/tsconfig.json', import.meta.url));
const dts = fileURLToPath(new URL('../dist/index.d.ts', import.meta.url));

describe('public API types', () => {
  it('public-api.ts type-checks (every @ts-expect-error still fails)', () => {
    expect(existsSync(dts), 'build first: npx tsc -b').toBe(true);
    let output = '';
    try {
      execFileSync(process.execPath, [tsc, '-p', project], { encoding: 'utf8', stdio: 'pipe' });
    } catch (err) {
      const e = err as { stdout?: string; stderr?: string };
      output = `${e.stdout ?? ''}${e.stderr ?? ''}` || String(err);
    }
    expect(output).toBe('');
  });
});
