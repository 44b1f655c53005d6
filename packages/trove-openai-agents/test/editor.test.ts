/** `TroveEditor` called with the operations the SDK passes (V4A diffs). */
import { describe, expect, it } from 'vitest';
import { NotFoundError } from 'trove-sdk';
import { TroveEditor, WORKING_DIRECTORY } from '../src/index.js';
import { freshNamespace, racingClient, useTrove } from '../../../test/helpers/trove-session.js';

const t = useTrove();
const editor = () => new TroveEditor(t.client.withNamespace(freshNamespace('editor')));

describe('createFile', () => {
  it('creates a file and its parents from a create-mode diff, exactly as applyDiff renders it', async () => {
    const ed = editor();
    const r = await ed.createFile({
      type: 'create_file',
      path: 'src/app/main.py',
      diff: '+def main():\n+    print("hi")\n',
    });
    expect(r).toEqual({ status: 'completed', output: 'Created src/app/main.py' });
    // applyDiff's create mode joins the + lines without a final newline; a last `+` line adds one.
    expect(await ed.client.readText('src/app/main.py')).toBe('def main():\n    print("hi")');
    await ed.createFile({ type: 'create_file', path: 'src/app/main.py', diff: '+replaced\n+\n' });
    expect(await ed.client.readText('src/app/main.py')).toBe('replaced\n');
  });

  it('keeps a directory named workspace apart from the namespace root', async () => {
    const ed = editor();
    await ed.createFile({ type: 'create_file', path: 'workspace/inner.txt', diff: '+nested\n' });
    expect((await ed.client.listDir()).entries.map((e) => e.path)).toEqual(['workspace/workspace']);
    expect(
      await ed.updateFile({ type: 'update_file', path: 'workspace/inner.txt', diff: '@@\n-nested\n+changed\n' }),
    ).toMatchObject({ status: 'completed' });
    expect(await ed.client.exec('cat workspace/workspace/inner.txt')).toBe('changed');
    expect(await ed.deleteFile({ type: 'delete_file', path: 'workspace/inner.txt' })).toMatchObject({
      status: 'completed',
    });
  });

  it('accepts absolute paths below the working directory, and ./ paths', async () => {
    const ed = editor();
    await ed.createFile({ type: 'create_file', path: `${WORKING_DIRECTORY}/abs.txt`, diff: '+a\n' });
    await ed.createFile({ type: 'create_file', path: './dot.txt', diff: '+b\n' });
    expect(await ed.client.readText('abs.txt')).toBe('a');
    expect(await ed.client.readText('dot.txt')).toBe('b');
  });

  it('fails on a diff that is not create-mode, and on paths outside the namespace', async () => {
    const ed = editor();
    const bad = await ed.createFile({ type: 'create_file', path: 'x.txt', diff: 'no plus\n' });
    expect(bad.status).toBe('failed');
    expect(bad.output).toMatch(/^Could not apply the diff to x.txt: /);
    expect(await ed.createFile({ type: 'create_file', path: '../x.txt', diff: '+a\n' })).toEqual({
      status: 'failed',
      output: "Invalid path '../x.txt': '..' is not allowed",
    });
    expect((await ed.createFile({ type: 'create_file', path: WORKING_DIRECTORY, diff: '+a\n' })).status).toBe('failed');
  });

  it('handles unicode names and content', async () => {
    const ed = editor();
    await ed.createFile({ type: 'create_file', path: 'docs/日本語 ✓.md', diff: '+# Grüße 👋\n' });
    expect(await ed.client.readText('docs/日本語 ✓.md')).toBe('# Grüße 👋');
  });
});

describe('updateFile', () => {
  it('applies a V4A diff with context', async () => {
    const ed = editor();
    await ed.client.write('calc.py', 'def add(a, b):\n    return a + b\n\ndef sub(a, b):\n    return a - b\n');
    const diff = '@@ def sub(a, b):\n-    return a - b\n+    return a - b  # subtract\n';
    expect(await ed.updateFile({ type: 'update_file', path: 'calc.py', diff })).toEqual({
      status: 'completed',
      output: 'Updated calc.py',
    });
    expect(await ed.client.readText('calc.py')).toBe(
      'def add(a, b):\n    return a + b\n\ndef sub(a, b):\n    return a - b  # subtract\n',
    );
  });

  it('moves the file when moveTo is set', async () => {
    const ed = editor();
    await ed.client.write('old/name.txt', 'one\ntwo\n');
    const r = await ed.updateFile({
      type: 'update_file',
      path: 'old/name.txt',
      moveTo: 'new/name.txt',
      diff: '@@\n one\n-two\n+three\n',
    });
    expect(r).toEqual({ status: 'completed', output: 'Updated old/name.txt and moved it to new/name.txt' });
    expect(await ed.client.readText('new/name.txt')).toBe('one\nthree\n');
    await expect(ed.client.readText('old/name.txt')).rejects.toBeInstanceOf(NotFoundError);
  });

  it('fails without writing when the file is missing or the context does not match', async () => {
    const ed = editor();
    expect(await ed.updateFile({ type: 'update_file', path: 'missing.txt', diff: '@@\n-a\n+b\n' })).toEqual({
      status: 'failed',
      output: 'File not found: missing.txt',
    });
    await ed.client.write('f.txt', 'alpha\nbeta\n');
    const r = await ed.updateFile({ type: 'update_file', path: 'f.txt', diff: '@@\n-gamma\n+delta\n' });
    expect(r.status).toBe('failed');
    expect(r.output).toMatch(/^Could not apply the diff to f.txt: /);
    expect(await ed.client.readText('f.txt')).toBe('alpha\nbeta\n');
  });

  it('applies the diff again on the new content when the file changed after it was read', async () => {
    const { client, raced } = racingClient(t, freshNamespace('race'), '# header from another writer\nx = 1\ny = 2\n');
    await client.write('v.py', 'x = 1\ny = 2\n');
    const r = await new TroveEditor(client).updateFile({
      type: 'update_file',
      path: 'v.py',
      diff: '@@\n x = 1\n-y = 2\n+y = 3\n',
    });
    expect(r.status).toBe('completed');
    expect(raced()).toBe(true);
    expect(await client.readText('v.py')).toBe('# header from another writer\nx = 1\ny = 3\n');
  });
});

describe('deleteFile', () => {
  it('deletes a file; a missing one fails', async () => {
    const ed = editor();
    await ed.client.write('gone.txt', 'x');
    expect(await ed.deleteFile({ type: 'delete_file', path: 'gone.txt' })).toEqual({
      status: 'completed',
      output: 'Deleted gone.txt',
    });
    await expect(ed.client.readText('gone.txt')).rejects.toBeInstanceOf(NotFoundError);
    expect(await ed.deleteFile({ type: 'delete_file', path: 'gone.txt' })).toEqual({
      status: 'failed',
      output: 'File not found: gone.txt',
    });
  });
});
