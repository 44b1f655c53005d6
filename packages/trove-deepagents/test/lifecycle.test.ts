/** Making a sandbox, its identity, and closing it, against the real server. */
import { describe, expect, it } from 'vitest';
import { SandboxError, isSandboxBackend } from 'deepagents';
import { NotFoundError, TroveClient } from 'trove-sdk';
import { TroveSandbox } from '../src/index.js';
import { freshNamespace, useTrove } from '../../../test/helpers/trove-session.js';

const t = useTrove();

describe('TroveSandbox lifecycle', () => {
  it('creates a sandbox in a new namespace with its initial files, text and bytes', async () => {
    const sandbox = await TroveSandbox.create({
      client: t.client,
      initialFiles: { '/README.md': '# hi\n', '/bin/blob.bin': new Uint8Array([0, 1, 2, 255]), 'rel/notes.txt': 'n' },
    });
    expect(sandbox.id).toMatch(/^deepagents-[0-9a-f]{12}$/);
    expect(sandbox.namespace).toBe(sandbox.id);
    expect(sandbox.isRunning).toBe(true);
    expect(isSandboxBackend(sandbox)).toBe(true);
    const ns = t.client.withNamespace(sandbox.id);
    expect(await ns.readText('README.md')).toBe('# hi\n');
    expect([...(await ns.readBytes('bin/blob.bin'))]).toEqual([0, 1, 2, 255]);
    expect(await ns.readText('rel/notes.txt')).toBe('n');
    // A generated namespace is emptied on close (no admin client: through the files API).
    await sandbox.close();
    expect(sandbox.isRunning).toBe(false);
    expect((await ns.listDir()).entries).toEqual([]);
  });

  it('uses the namespace it is given and keeps it on close by default', async () => {
    const namespace = freshNamespace('kept');
    const sandbox = await TroveSandbox.create({ client: t.client, namespace, initialFiles: { '/a.txt': 'a' } });
    expect(sandbox.id).toBe(namespace);
    await sandbox.close();
    expect(await t.client.withNamespace(namespace).readText('a.txt')).toBe('a');
  });

  it("uses the client's namespace, and works from the constructor too", async () => {
    const namespace = freshNamespace('client-ns');
    const client = t.client.withNamespace(namespace);
    const created = await TroveSandbox.create({ client });
    expect(created.id).toBe(namespace);
    const constructed = new TroveSandbox({ client });
    expect(constructed.id).toBe(namespace);
    expect((await constructed.write('/x.txt', 'x')).error).toBeUndefined();
    expect(await client.readText('x.txt')).toBe('x');
  });

  it('makes its own client from clientOptions', async () => {
    const sandbox = await TroveSandbox.create({
      clientOptions: { apiKey: t.server.runtimeKey, baseUrl: t.server.baseUrl },
      namespace: freshNamespace('opts'),
    });
    expect(sandbox.client).toBeInstanceOf(TroveClient);
    expect((await sandbox.execute('echo ok')).output).toBe('ok');
  });

  it('finds the namespace of a namespace-scoped key', async () => {
    const namespace = freshNamespace('scoped');
    const key = await t.admin.keys.create('scoped', { namespace });
    const client = new TroveClient({ apiKey: key.apiKey, baseUrl: t.server.baseUrl });
    const sandbox = await TroveSandbox.create({ client });
    expect(sandbox.id).toBe(namespace);
    await sandbox.write('/f.txt', 'scoped');
    expect(await t.client.withNamespace(namespace).readText('f.txt')).toBe('scoped');
  });

  it('deletes the namespace on close with an admin client', async () => {
    const namespace = freshNamespace('deleted');
    const sandbox = await TroveSandbox.create({
      client: t.client,
      namespace,
      deleteOnClose: true,
      adminClient: t.admin,
      initialFiles: { '/a.txt': 'a' },
    });
    await sandbox.close();
    const names = (await t.admin.namespaces.list()).map((n) => n.name);
    expect(names).not.toContain(namespace);
    await expect(t.client.withNamespace(namespace).readText('a.txt')).rejects.toBeInstanceOf(NotFoundError);
    // A second close does nothing.
    await sandbox.close();
  });

  it('kills the processes it left running on close', async () => {
    const sandbox = await TroveSandbox.create({ client: t.client, namespace: freshNamespace('procs') });
    const proc = await sandbox.client.processes.start('sleep 60');
    await sandbox.close();
    const ended = await sandbox.client.processes.wait(proc.processId, { maxWaitMs: 10_000 });
    expect(ended.state).toBe('exited');
  });

  it('refuses every call once closed', async () => {
    const sandbox = await TroveSandbox.create({ client: t.client, namespace: freshNamespace('closed') });
    await sandbox.close();
    const calls: Array<() => Promise<unknown>> = [
      () => sandbox.execute('true'),
      () => sandbox.ls('/'),
      () => sandbox.read('/a'),
      () => sandbox.write('/a', 'a'),
      () => sandbox.edit('/a', 'a', 'b'),
      () => sandbox.grep('a'),
      () => sandbox.glob('*'),
      () => sandbox.uploadFiles([]),
      () => sandbox.downloadFiles([]),
    ];
    for (const call of calls) {
      const err = await call().catch((e: unknown) => e);
      expect(SandboxError.isInstance(err)).toBe(true);
      expect((err as SandboxError).code).toBe('NOT_INITIALIZED');
    }
  });

  it('fails to create when an initial file cannot be written, and cleans up', async () => {
    const err = await TroveSandbox.create({
      client: t.client,
      initialFiles: { '/a.txt': 'a', '/a.txt/b.txt': 'under a file' },
    }).catch((e: unknown) => e);
    expect(SandboxError.isInstance(err)).toBe(true);
    expect((err as SandboxError).code).toBe('FILE_OPERATION_FAILED');
    expect((err as Error).message).toContain('/a.txt/b.txt (invalid_path)');
  });

  it('needs a namespace when constructed directly', () => {
    expect(() => new TroveSandbox({ client: t.client })).toThrow(/needs a namespace/);
  });
});
