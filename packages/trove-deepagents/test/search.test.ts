/** `grep` and `glob`: searches run in the sandbox over the whole namespace tree. */
import { beforeAll, describe, expect, it } from 'vitest';
import { TroveSandbox } from '../src/index.js';
import { freshNamespace, useTrove } from '../../../test/helpers/trove-session.js';

const t = useTrove();
const encode = (s: string) => new TextEncoder().encode(s);
let sb: TroveSandbox;

beforeAll(async () => {
  sb = await TroveSandbox.create({
    client: t.client,
    namespace: freshNamespace('search'),
    initialFiles: {
      '/src/app.py': 'import os\nTODO = "fix (a+b)*"\nprint("hello")\n',
      '/src/util.ts': 'export const a = 1; // TODO later\n',
      '/src/deep/nested/mod.py': '# TODO: nested\n',
      '/docs/readme.md': 'No match here\nTODO: docs\n',
      '/docs/weird:name.txt': 'TODO in a name with a colon\n',
      '/ünï/日本.txt': 'TODO 日本語 テキスト\n',
      '/.hidden/secret.env': 'TODO=hidden\n',
      '/image.png': 'TODO inside a png by name\n',
      '/blob.dat': new Uint8Array([...encode('TODO'), 0, 1, 2, 0, 255]),
    },
  });
});

describe('grep', () => {
  it('finds a literal string everywhere, regex characters included, skipping binary files', async () => {
    const r = await sb.grep('TODO');
    expect(r.error).toBeUndefined();
    const found = r.matches!.map((m) => `${m.path}:${m.line}`).sort();
    expect(found).toEqual(
      [
        '/.hidden/secret.env:1',
        '/docs/readme.md:2',
        '/docs/weird:name.txt:1',
        '/src/app.py:2',
        '/src/deep/nested/mod.py:1',
        '/src/util.ts:1',
        '/ünï/日本.txt:1',
      ].sort(),
    );
    expect(r.matches!.find((m) => m.path === '/ünï/日本.txt')!.text).toBe('TODO 日本語 テキスト');
    expect((await sb.grep('(a+b)*')).matches).toEqual([{ path: '/src/app.py', line: 2, text: 'TODO = "fix (a+b)*"' }]);
  });

  it('searches under a directory or in one file', async () => {
    expect((await sb.grep('TODO', '/src/deep')).matches).toEqual([
      { path: '/src/deep/nested/mod.py', line: 1, text: '# TODO: nested' },
    ]);
    expect((await sb.grep('hello', '/src/app.py')).matches).toEqual([
      { path: '/src/app.py', line: 3, text: 'print("hello")' },
    ]);
  });

  it('filters by a file-name glob', async () => {
    const r = await sb.grep('TODO', '/', '*.py');
    expect(r.matches!.map((m) => m.path).sort()).toEqual(['/src/app.py', '/src/deep/nested/mod.py']);
  });

  it('caps the matches and says the result is truncated', async () => {
    const r = await sb.grep('TODO', '/', null, 2);
    expect(r.matches).toHaveLength(2);
    expect(r.truncated).toBe(true);
    expect((await sb.grep('hello', '/', null, 5)).truncated).toBeFalsy();
  });

  it('returns no matches, or an error for a missing path or an empty pattern', async () => {
    expect(await sb.grep('no such text anywhere')).toEqual({ matches: [] });
    expect(await sb.grep('TODO', '/nope')).toEqual({ error: "Path '/nope' not found" });
    expect((await sb.grep('')).error).toBeDefined();
    expect((await sb.grep('x', '/../etc')).error).toMatch(/'\.\.' is not allowed/);
  });

  it('is not fooled by an init script that prints', async () => {
    const other = await TroveSandbox.create({
      client: t.client,
      namespace: freshNamespace('noisy'),
      initialFiles: { '/a.txt': 'needle\n' },
    });
    // The script prints a grep-like line and a NUL, and does not itself contain the word searched for.
    await other.client.setInit('printf "noise: 1:nee""dle\\0x\\n"\n');
    expect((await other.grep('needle')).matches).toEqual([{ path: '/a.txt', line: 1, text: 'needle' }]);
    expect((await other.glob('*.txt')).files!.map((f) => f.path)).toEqual(['/a.txt']);
  });
});

describe('glob', () => {
  it('matches ** across directories, sorted, with agent paths and metadata', async () => {
    const r = await sb.glob('**/*.py');
    expect(r.files!.map((f) => f.path)).toEqual(['/src/app.py', '/src/deep/nested/mod.py']);
    const app = r.files![0]!;
    expect(app).toMatchObject({ is_dir: false, size: 45 });
    expect(app.modified_at).toMatch(/Z$/);
  });

  it('matches * within one level only', async () => {
    expect((await sb.glob('*.png')).files!.map((f) => f.path)).toEqual(['/image.png']);
    expect((await sb.glob('*.py')).files).toEqual([]);
  });

  it('searches from a directory, with braces, classes and directories', async () => {
    expect((await sb.glob('*.{py,ts}', '/src')).files!.map((f) => f.path)).toEqual(['/src/app.py', '/src/util.ts']);
    expect((await sb.glob('[au]*', '/src')).files!.map((f) => f.path)).toEqual(['/src/app.py', '/src/util.ts']);
    expect((await sb.glob('**/nested', '/src')).files).toEqual([
      expect.objectContaining({ path: '/src/deep/nested/', is_dir: true }),
    ]);
  });

  it('includes dot files and unicode names', async () => {
    expect((await sb.glob('**/*.env')).files!.map((f) => f.path)).toEqual(['/.hidden/secret.env']);
    expect((await sb.glob('ünï/*')).files!.map((f) => f.path)).toEqual(['/ünï/日本.txt']);
  });

  it('reports a missing directory', async () => {
    expect(await sb.glob('*', '/nope')).toEqual({ error: "Directory '/nope' not found" });
  });

  it('says when there were more entries than it examines', async () => {
    const small = new TroveSandbox({ client: sb.client, maxGlobEntries: 3 });
    const r = await small.glob('**');
    expect(r.truncated).toBe(true);
    expect(r.files!.length).toBeLessThanOrEqual(3);
  });

  it('finds files in a tree larger than the files API lists recursively', async () => {
    const big = await TroveSandbox.create({ client: t.client, namespace: freshNamespace('bigtree') });
    await big.execute(
      'mkdir -p many && cd many && for i in $(seq 1 1500); do echo $i > f$i.txt; done && echo target > zz-target.md',
    );
    const r = await big.glob('**/*.md');
    expect(r.files!.map((f) => f.path)).toEqual(['/many/zz-target.md']);
    expect((await big.grep('target')).matches).toEqual([{ path: '/many/zz-target.md', line: 1, text: 'target' }]);
  });
});
