import { test } from 'vitest';
import { createWriteStream, createReadStream, promises as fsp } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { createArchive, restoreArchive } from '/work/main/packages/server/src/snapshots/archive.ts';
test('quick', async () => {
  let t = performance.now();
  const { stream, done } = createArchive('/tmp/snapbench/tree');
  await pipeline(stream, createWriteStream('/tmp/snapdev/a.tgz'));
  console.log('create', await done, (performance.now() - t).toFixed(0));
  await fsp.rm('/tmp/snapdev/ws', { recursive: true, force: true });
  await fsp.mkdir('/tmp/snapdev/ws/namespaces/n1', { recursive: true });
  t = performance.now();
  const r = await restoreArchive(createReadStream('/tmp/snapdev/a.tgz'), '/tmp/snapdev/ws/namespaces/n1', { maxBytes: 0, maxFiles: 0, maxEntryBytes: 0 });
  console.log('restore', r, (performance.now() - t).toFixed(0));
}, 120000);
