/**
 * exec.completed keeps the first 4 KiB of the command plus its size and
 * SHA-256, so a page of the event log stays a few MiB even when every event on
 * it comes from a 100 KiB command whose text JSON inflates sixfold.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, startServer, type StartedServer } from '../../../../test/helpers/server.js';
import { MAX_EVENT_DATA_BYTES } from '../../src/events/data-size.js';

const hasBwrap = ['/usr/bin/bwrap', '/bin/bwrap', '/usr/local/bin/bwrap'].some((p) => existsSync(p));
const SKIP = 'SKIPPED: bubblewrap (bwrap) is not installed; run `npm run setup:toolbox`';

interface ExecEvent {
  namespace: string;
  data: {
    command: string;
    command_bytes: number;
    command_sha256: string;
    command_truncated: boolean;
    exit_code: number;
    duration_ms: number;
    stdout: string;
  };
}

describe.skipIf(!hasBwrap)(`exec.completed size${hasBwrap ? '' : ` (${SKIP})`}`, () => {
  let server: StartedServer;
  let admin: ReturnType<typeof api>;

  const exec = (ns: string, command: string) =>
    api(
      server,
      server.runtimeKey,
      ns,
    )('/v1/exec', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ command }),
    });
  const events = async (query: string) => {
    const res = await admin(`/v1/workspaces/${server.workspaceId}/events?${query}`);
    expect(res.status).toBe(200);
    const text = await res.text();
    return { text, body: JSON.parse(text) as { events: ExecEvent[]; next_cursor: string | null } };
  };

  beforeAll(async () => {
    server = await startServer();
    admin = api(server, server.adminKey);
  });
  afterAll(async () => {
    await server?.close();
  });

  it('stores the first 4 KiB of a 100 KiB command, cut at a character boundary, with its full length and SHA-256', async () => {
    // 4095 ASCII bytes, then 3-byte characters: the 4 KiB cut falls inside one, which must go whole.
    const prefix = "echo ran; : '";
    const command = `${prefix}${'a'.repeat(4095 - prefix.length)}${'€'.repeat(40_000)}'`;
    const bytes = Buffer.byteLength(command, 'utf8');
    expect(bytes).toBeGreaterThan(100 * 1024);
    const res = await exec('big-command', command);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ exit_code: 0, stdout: 'ran\n' });
    const { body } = await events('types=exec.completed&namespace=big-command');
    expect(body.events).toHaveLength(1);
    const data = body.events[0]!.data;
    expect(data).toEqual({
      command: command.slice(0, 4095),
      command_bytes: bytes,
      command_sha256: createHash('sha256').update(command, 'utf8').digest('hex'),
      command_truncated: true,
      exec_id: expect.stringMatching(/^exec-[0-9a-f]{24}$/),
      exit_code: 0,
      exit_reason: 'exited',
      duration_ms: data.duration_ms,
      stdout: 'ran\n',
    });
    expect(Buffer.byteLength(data.command, 'utf8')).toBe(4095);
  });

  it('keeps a short command whole (command_truncated false)', async () => {
    const command = 'echo "héllo ✓"';
    await exec('small-command', command);
    const { body } = await events('types=exec.completed&namespace=small-command');
    expect(body.events[0]!.data).toMatchObject({
      command,
      command_bytes: Buffer.byteLength(command, 'utf8'),
      command_sha256: createHash('sha256').update(command, 'utf8').digest('hex'),
      command_truncated: false,
      stdout: 'héllo ✓\n',
    });
  });

  it('a page of 200 worst-case exec events (the maximum limit) stays under 200 × the per-event bound', async () => {
    // Control characters are escaped as \u00XX in JSON: six bytes for each byte of command and stdout kept.
    const command = `head -c 4096 /dev/zero\n#${'\u0001'.repeat(8 * 1024)}`;
    const namespaces = Array.from({ length: 8 }, (_, i) => `page-${i}`);
    let next = 0;
    await Promise.all(
      namespaces.map(async (ns) => {
        while (next < 200) {
          next++;
          const res = await exec(ns, command);
          expect(res.status).toBe(200);
          await res.arrayBuffer();
        }
      }),
    );
    const { text, body } = await events('types=exec.completed&limit=200');
    const pageEvents = body.events.filter((e) => e.namespace.startsWith('page-'));
    expect(pageEvents).toHaveLength(200);
    for (const e of pageEvents) {
      expect(e.data.command_bytes).toBe(Buffer.byteLength(command, 'utf8'));
      expect(e.data.stdout).toBe('\u0000'.repeat(1024));
      const dataBytes = Buffer.byteLength(JSON.stringify(e.data), 'utf8');
      // Near the worst case, and still within the bound: nothing was cut beyond the command's 4 KiB.
      expect(dataBytes).toBeGreaterThan(28 * 1024);
      expect(dataBytes).toBeLessThanOrEqual(MAX_EVENT_DATA_BYTES);
    }
    // The envelope around each event's data is a few hundred bytes.
    expect(Buffer.byteLength(text, 'utf8')).toBeLessThanOrEqual(200 * (MAX_EVENT_DATA_BYTES + 512));
    expect(Buffer.byteLength(text, 'utf8')).toBeLessThan(7 * 1024 * 1024);
  });
});
