import { it } from 'vitest';
import { createFixture } from './exec-fixture.js';
it('dbg', async () => {
  const f = await createFixture({ memoryBytes: Number(process.env.MEM ?? 512 << 20) });
  const t = Date.now();
  const r = await f.run(process.env.CMD!, { timeoutMs: 30000 });
  console.log(r.stdout, r.stderr, r.exitCode, Date.now() - t);
  await f.cleanup();
});
