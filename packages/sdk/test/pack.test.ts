/** `npm pack` ships only what users need: compiled JS, declarations, README, package.json. */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const repoRoot = fileURLToPath(new URL('../../..', import.meta.url));

describe('npm pack', () => {
  it('lists only dist js/d.ts, README.md and package.json', () => {
    const out = execFileSync('npm', ['pack', '--dry-run', '--json', '-w', 'trove-sdk'], {
      cwd: repoRoot,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const [pkg] = JSON.parse(out) as Array<{ name: string; files: Array<{ path: string }> }>;
    expect(pkg!.name).toBe('trove-sdk');
    const files = pkg!.files.map((f) => f.path).sort();
    expect(files).toContain('package.json');
    expect(files).toContain('README.md');
    expect(files).toContain('dist/index.js');
    expect(files).toContain('dist/index.d.ts');
    expect(files).toContain('dist/webhooks.js');
    expect(files).toContain('dist/resources/events.d.ts');
    const unexpected = files.filter(
      (f) => !(f === 'package.json' || f === 'README.md' || /^dist\/.+\.(js|d\.ts)$/.test(f)),
    );
    expect(unexpected).toEqual([]);
    // Nothing from src/ or test/, no maps pointing at sources that are not shipped.
    expect(files.some((f) => f.endsWith('.map') || f.startsWith('src/') || f.startsWith('test/'))).toBe(false);
  });
});
