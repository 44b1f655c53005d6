/** The MCP SDK's own client against `trove mcp serve` (the built CLI) over stdio, with a real server behind it. */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { cliBin, startServer, type StartedServer } from '../../../test/helpers/server.js';
import { call, checkListings, exerciseTools } from './helpers/exercise.js';

// Every step spawns the CLI (a fresh node process); generous, so a busy machine does not fail the run.
vi.setConfig({ testTimeout: 240_000 });

let server: StartedServer;
let home: string;

beforeAll(async () => {
  server = await startServer();
  home = mkdtempSync(join(tmpdir(), 'trove-mcp-home-'));
});
afterAll(async () => {
  await server?.close();
  rmSync(home, { recursive: true, force: true });
});

async function connect(env: Record<string, string>): Promise<{ client: Client; stderr: () => string; transport: StdioClientTransport }> {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [cliBin, 'mcp', 'serve'],
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home, ...env },
    stderr: 'pipe',
  });
  let stderr = '';
  transport.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const client = new Client({ name: 'trove-test', version: '1.0.0' });
  await client.connect(transport);
  return { client, stderr: () => stderr, transport };
}

describe('trove mcp serve (stdio)', () => {
  it('lists the tools and prompt, and every tool works', async () => {
    const { client, stderr } = await connect({ TROVE_API_KEY: server.runtimeKey, TROVE_BASE_URL: server.baseUrl, TROVE_NAMESPACE: 'mcp-stdio' });
    try {
      await checkListings(client);
      await exerciseTools(client);
      // The tools really acted on the namespace the environment named.
      const res = await fetch(`${server.baseUrl}/files/notes/hello.md`, {
        headers: { authorization: `Bearer ${server.runtimeKey}`, 'x-namespace': 'mcp-stdio' },
      });
      expect(await res.text()).toBe('hello');
      expect(stderr()).toContain('trove mcp: serving');
    } finally {
      await client.close();
    }
  });

  it('failures are tool results, not crashes: a bad key, then the server going away', async () => {
    const bad = await connect({ TROVE_API_KEY: 'trove-sk-wrong', TROVE_BASE_URL: server.baseUrl, TROVE_NAMESPACE: 'x' });
    try {
      expect(await call(bad.client, 'trove_exec', { command: 'true' })).toEqual({
        text: 'trove error (HTTP 401): Invalid API key',
        isError: true,
      });
    } finally {
      await bad.client.close();
    }
    const down = await connect({ TROVE_API_KEY: server.runtimeKey, TROVE_BASE_URL: 'http://127.0.0.1:9', TROVE_NAMESPACE: 'x' });
    try {
      const r = await call(down.client, 'trove_list', {});
      expect(r.isError).toBe(true);
      expect(r.text).toMatch(/^trove error: Connection error/);
      // Still serving after the failure.
      expect((await down.client.listTools()).tools.length).toBe(9);
    } finally {
      await down.client.close();
    }
  });

  it('without credentials it exits 3 before speaking MCP', async () => {
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [cliBin, 'mcp', 'serve'],
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home },
      stderr: 'pipe',
    });
    let stderr = '';
    transport.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const client = new Client({ name: 'trove-test', version: '1.0.0' });
    await expect(client.connect(transport)).rejects.toThrow();
    expect(stderr).toContain('error: not logged in');
  });
});
