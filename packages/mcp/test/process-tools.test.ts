/**
 * The process tools through an MCP client (in-memory transport) against the SDK's scripted fake of
 * the processes API: what they send, and how they read when bytes were dropped, output is paged,
 * or the process ended. The stdio and HTTP tests run them against the real server.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { TroveClient } from 'trove-sdk';
import { createTroveMcpServer } from '../src/index.js';
import { startFakeServer, type FakeServer } from '../../sdk/test/helpers/fake-processes.js';
import { call } from './helpers/exercise.js';

let fake: FakeServer;
let client: Client;

beforeAll(async () => {
  fake = await startFakeServer();
  const trove = new TroveClient({ apiKey: 'trove-sk-test', baseUrl: fake.url, namespace: 'ns', maxRetries: 0 });
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  await createTroveMcpServer(trove).connect(serverSide);
  client = new Client({ name: 'test', version: '1' });
  await client.connect(clientSide);
});
afterAll(async () => {
  await client?.close();
  await fake?.close();
});

describe('trove_process_start', () => {
  it('starts with stdin closed (no tool could write more) and the limit in ms', async () => {
    const r = await call(client, 'trove_process_start', { command: 'npm test', stdin: 'y\n', timeout_seconds: 90 });
    const id = [...fake.processes.keys()].at(-1)!;
    expect(r).toEqual({
      text: `started ${id} (running)\nRead its output with trove_process_output {"process_id": "${id}"}; stop it with trove_process_kill.`,
      isError: false,
    });
    expect(JSON.parse(fake.requests('/v1/processes').at(-1)!.body.toString())).toEqual({
      command: 'npm test',
      stdin: 'y\n',
      close_stdin: true,
      timeout_ms: 90_000,
    });
    await call(client, 'trove_process_start', { command: 'true' });
    expect(JSON.parse(fake.requests('/v1/processes').at(-1)!.body.toString())).toEqual({
      command: 'true',
      close_stdin: true,
    });
  });

  it('reports the namespace’s process limit as an error result', async () => {
    fake.busy = true;
    try {
      expect(await call(client, 'trove_process_start', { command: 'x' })).toEqual({
        text: 'trove error (HTTP 429): Too many processes running in this namespace',
        isError: true,
      });
    } finally {
      fake.busy = false;
    }
  });
});

describe('trove_process_output', () => {
  it('returns new output of both streams with byte ranges and the offsets to pass next', async () => {
    const p = fake.add('x');
    fake.write(p.process_id, 'stdout', 'line 1\nline 2\n');
    expect((await call(client, 'trove_process_output', { process_id: p.process_id })).text).toBe(
      [
        `${p.process_id}: running`,
        '--- stdout [bytes 0-14 of 14] ---',
        'line 1\nline 2',
        '--- stderr: nothing new (0 bytes in all) ---',
        'next call: stdout_offset=14, stderr_offset=0 (the process is still running)',
      ].join('\n'),
    );
    fake.write(p.process_id, 'stdout', 'abcdefghij');
    fake.write(p.process_id, 'stderr', 'warn');
    expect(
      (await call(client, 'trove_process_output', { process_id: p.process_id, stdout_offset: 14, max_bytes: 4 })).text,
    ).toBe(
      [
        `${p.process_id}: running`,
        '--- stdout [bytes 14-18 of 24] ---',
        'abcd',
        '--- stderr [bytes 0-4 of 4] ---',
        'warn',
        'more output is waiting: call again with stdout_offset=18, stderr_offset=4',
      ].join('\n'),
    );
  });

  it('says what was dropped, waits for the end when asked, and names how it ended', async () => {
    const p = fake.add('x');
    fake.write(p.process_id, 'stdout', '0123456789');
    fake.drop(p.process_id, 'stdout', 6);
    const waited = call(client, 'trove_process_output', {
      process_id: p.process_id,
      stdout_offset: 2,
      stderr_offset: 0,
      wait_seconds: 30,
    });
    await expect.poll(() => fake.requests(`/v1/processes/${p.process_id}/wait`).length, { timeout: 20_000 }).toBe(1);
    fake.exit(p.process_id, 143, 'killed', 'SIGTERM');
    expect((await waited).text).toBe(
      [
        `${p.process_id}: killed by SIGTERM (exit 143)`,
        '[4 bytes of stdout before byte 6 are no longer kept]',
        '--- stdout [bytes 6-10 of 10] ---',
        '6789',
        '--- stderr: nothing new (0 bytes in all) ---',
        'that is all: the process has ended',
      ].join('\n'),
    );
    expect(fake.requests(`/v1/processes/${p.process_id}/wait`)[0]!.url).toBe(
      `/v1/processes/${p.process_id}/wait?timeout=30`,
    );
  });

  it('refuses out-of-range arguments and reports unknown ids', async () => {
    const bad = await call(client, 'trove_process_output', { process_id: 'proc-1', wait_seconds: 31 }).catch(
      (e: Error) => ({ text: e.message, isError: true }),
    );
    expect(bad.isError).toBe(true);
    expect(bad.text).toMatch(/wait_seconds/);
    expect(await call(client, 'trove_process_output', { process_id: 'proc-nope' })).toEqual({
      text: 'trove error (HTTP 404): Process not found: proc-nope',
      isError: true,
    });
  });
});

describe('trove_process_kill', () => {
  it('sends SIGTERM by default, any listed signal, and says when the process had already ended', async () => {
    const p = fake.add('sleep 100');
    expect(await call(client, 'trove_process_kill', { process_id: p.process_id, signal: 'SIGUSR1' })).toEqual({
      text: `sent SIGUSR1 to ${p.process_id}`,
      isError: false,
    });
    expect(await call(client, 'trove_process_kill', { process_id: p.process_id })).toEqual({
      text: `sent SIGTERM to ${p.process_id}`,
      isError: false,
    });
    expect(JSON.parse(fake.requests(`/v1/processes/${p.process_id}/signal`).at(-1)!.body.toString())).toEqual({
      signal: 'SIGTERM',
    });
    expect(await call(client, 'trove_process_kill', { process_id: p.process_id })).toEqual({
      text: `${p.process_id} had already ended (killed by SIGTERM (exit 143)); no signal was sent`,
      isError: false,
    });
    const bad = await call(client, 'trove_process_kill', { process_id: p.process_id, signal: 'SIGSEGV' }).catch(
      (e: Error) => ({ text: e.message, isError: true }),
    );
    expect(bad.isError).toBe(true);
    expect(bad.text).toMatch(/signal/);
  });
});
