/**
 * One script that lists and calls every tool and the prompt through an MCP
 * client, shared by the stdio and the Streamable HTTP tests so both transports
 * are held to exactly the same behaviour.
 */
import { expect } from 'vitest';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';

export const EXPECTED_TOOLS = [
  'trove_bootstrap',
  'trove_delete',
  'trove_exec',
  'trove_list',
  'trove_process_kill',
  'trove_process_output',
  'trove_process_start',
  'trove_put_base64',
  'trove_read',
  'trove_restore',
  'trove_snapshot',
  'trove_write',
];

export async function call(
  client: Client,
  name: string,
  args: Record<string, unknown> = {},
): Promise<{ text: string; isError: boolean }> {
  const res = (await client.callTool({ name, arguments: args })) as CallToolResult;
  const text = res.content.map((c) => (c.type === 'text' ? c.text : '')).join('');
  return { text, isError: res.isError === true };
}

/** Lists the tools and prompts and checks their schemas and the server instructions. */
export async function checkListings(client: Client): Promise<void> {
  const { tools } = await client.listTools();
  expect(tools.map((t) => t.name).sort()).toEqual(EXPECTED_TOOLS);
  const byName = Object.fromEntries(tools.map((t) => [t.name, t]));
  for (const t of tools) {
    expect(t.description, t.name).toBeTruthy();
    expect(t.inputSchema.type).toBe('object');
  }
  expect(byName.trove_exec!.inputSchema.required).toEqual(['command']);
  expect(Object.keys(byName.trove_exec!.inputSchema.properties ?? {})).toEqual(['command', 'stdin']);
  expect(byName.trove_write!.inputSchema.required).toEqual(['path', 'content']);
  expect(byName.trove_put_base64!.inputSchema.required).toEqual(['path', 'content_b64']);
  expect(byName.trove_restore!.inputSchema.required).toEqual(['snapshot_id']);
  expect(byName.trove_list!.inputSchema.required ?? []).toEqual([]);
  expect(byName.trove_read!.annotations?.readOnlyHint).toBe(true);
  expect(byName.trove_delete!.annotations?.destructiveHint).toBe(true);
  expect(byName.trove_process_start!.inputSchema.required).toEqual(['command']);
  expect(Object.keys(byName.trove_process_start!.inputSchema.properties ?? {})).toEqual([
    'command',
    'stdin',
    'timeout_seconds',
  ]);
  expect(byName.trove_process_output!.inputSchema.required).toEqual(['process_id']);
  expect(Object.keys(byName.trove_process_output!.inputSchema.properties ?? {})).toEqual([
    'process_id',
    'stdout_offset',
    'stderr_offset',
    'max_bytes',
    'wait_seconds',
  ]);
  expect(byName.trove_process_output!.annotations?.readOnlyHint).toBe(true);
  expect(byName.trove_process_kill!.inputSchema.required).toEqual(['process_id']);

  const { prompts } = await client.listPrompts();
  expect(prompts.map((p) => p.name)).toEqual(['trove_orient']);

  const instructions = client.getInstructions() ?? '';
  expect(instructions).toContain('trove_bootstrap first');
  expect(instructions).toContain('workspace/.trove/agent.md');
  expect(instructions).toContain('trove_process_start');
}

/** Calls every tool (success and failure paths) and the prompt. */
export async function exerciseTools(client: Client): Promise<void> {
  expect(await call(client, 'trove_write', { path: 'notes/hello.md', content: 'hello' })).toEqual({
    text: 'wrote workspace/notes/hello.md (5 bytes)',
    isError: false,
  });
  expect(await call(client, 'trove_read', { path: 'workspace/notes/hello.md' })).toEqual({
    text: 'hello',
    isError: false,
  });

  expect(await call(client, 'trove_exec', { command: 'cat workspace/notes/hello.md; echo oops >&2; exit 3' })).toEqual({
    text: '[exit 3]\nhello\n--- stderr ---\noops\n',
    isError: false,
  });
  expect(await call(client, 'trove_exec', { command: 'tr a-z A-Z', stdin: 'shout' })).toEqual({
    text: '[exit 0]\nSHOUT',
    isError: false,
  });

  const bytes = Buffer.from([0, 1, 2, 250, 251, 252, 253, 254, 255]);
  expect(
    await call(client, 'trove_put_base64', { path: 'bin/data.bin', content_b64: bytes.toString('base64') }),
  ).toEqual({
    text: 'wrote workspace/bin/data.bin (9 bytes)',
    isError: false,
  });
  expect(
    (await call(client, 'trove_exec', { command: 'od -An -tu1 workspace/bin/data.bin' })).text
      .replace(/\s+/g, ' ')
      .trim(),
  ).toBe('[exit 0] 0 1 2 250 251 252 253 254 255');
  const binRead = await call(client, 'trove_read', { path: 'bin/data.bin' });
  expect(binRead.isError).toBe(false);
  expect(binRead.text).toContain('workspace/bin/data.bin is a binary file (9 B)');
  expect(await call(client, 'trove_put_base64', { path: 'x.bin', content_b64: 'not base64!!' })).toEqual({
    text: 'trove error: content_b64 is not valid base64',
    isError: true,
  });

  const list = await call(client, 'trove_list', {});
  expect(list.text.split('\n')).toEqual(['workspace/bin/', 'workspace/notes/']);
  const rec = await call(client, 'trove_list', { path: 'workspace/', recursive: true });
  expect(rec.text).toMatch(/^workspace\/notes\/hello\.md {2}\(5 B, modified \d{4}-\d\d-\d\dT[\d:.]+Z\)$/m);

  await call(client, 'trove_write', { path: '.trove/agent.md', content: 'Left off at step 3.' });
  const boot = await call(client, 'trove_bootstrap');
  expect(boot.isError).toBe(false);
  expect(boot.text).toContain('<trove_workspace');
  expect(boot.text).toContain('Left off at step 3.');
  expect(boot.text).toContain('workspace/notes/hello.md');

  const snap = await call(client, 'trove_snapshot', { label: 'before delete' });
  expect(snap.isError).toBe(false);
  const snapshotId = /created snapshot (snap-[\w-]+) "before delete"/.exec(snap.text)?.[1];
  expect(snapshotId, snap.text).toBeTruthy();

  expect(await call(client, 'trove_delete', { path: 'notes' })).toEqual({
    text: 'deleted workspace/notes',
    isError: false,
  });
  const gone = await call(client, 'trove_read', { path: 'notes/hello.md' });
  expect(gone).toEqual({ text: 'trove error (HTTP 404): Path not found: workspace/notes/hello.md', isError: true });

  const restored = await call(client, 'trove_restore', { snapshot_id: snapshotId });
  expect(restored.isError).toBe(false);
  expect(restored.text).toMatch(new RegExp(`^restored ${snapshotId}: \\d+ files$`));
  expect(await call(client, 'trove_read', { path: 'notes/hello.md' })).toEqual({ text: 'hello', isError: false });

  const unknown = await call(client, 'trove_restore', { snapshot_id: 'snap-000000000000000000000000' });
  expect(unknown.isError).toBe(true);
  expect(unknown.text).toMatch(/^trove error \(HTTP 404\): /);
  const rootDelete = await call(client, 'trove_delete', { path: 'workspace/' });
  expect(rootDelete.isError).toBe(true);
  expect(rootDelete.text).toMatch(/^trove error \(HTTP 400\): /);

  await exerciseProcessTools(client);

  const prompt = await client.getPrompt({ name: 'trove_orient' });
  const first = prompt.messages[0]!;
  expect(first.role).toBe('user');
  const promptText = first.content.type === 'text' ? first.content.text : '';
  expect(promptText).toContain('Orient yourself');
  expect(promptText).toContain('Left off at step 3.');
}

/** A background process through the three process tools: start, offset-based reads, kill. */
async function exerciseProcessTools(client: Client): Promise<void> {
  const started = await call(client, 'trove_process_start', {
    command: 'cat; echo to-err >&2; while [ ! -e workspace/proc-go ]; do sleep 0.05; done; echo after; exit 4',
    stdin: 'from stdin\n',
  });
  expect(started.isError, started.text).toBe(false);
  const id = /^started (proc-[0-9a-f]+) \(running\)\n/.exec(started.text)?.[1];
  expect(id, started.text).toBeTruthy();
  expect(started.text).toContain(`trove_process_output {"process_id": "${id}"}`);

  // stdin was written and closed: `cat` ends and the next lines are printed; wait for them.
  let first = await call(client, 'trove_process_output', { process_id: id });
  while (!first.text.includes('to-err')) first = await call(client, 'trove_process_output', { process_id: id });
  expect(first).toEqual({
    text: [
      `${id}: running`,
      '--- stdout [bytes 0-11 of 11] ---',
      'from stdin',
      '--- stderr [bytes 0-7 of 7] ---',
      'to-err',
      'next call: stdout_offset=11, stderr_offset=7 (the process is still running)',
    ].join('\n'),
    isError: false,
  });

  await call(client, 'trove_write', { path: 'proc-go', content: '' });
  const rest = await call(client, 'trove_process_output', {
    process_id: id,
    stdout_offset: 11,
    stderr_offset: 7,
    wait_seconds: 30,
  });
  expect(rest).toEqual({
    text: [
      `${id}: exited with 4`,
      '--- stdout [bytes 11-17 of 17] ---',
      'after',
      '--- stderr: nothing new (7 bytes in all) ---',
      'that is all: the process has ended',
    ].join('\n'),
    isError: false,
  });
  // Paging: a small max_bytes leaves the rest for the next call.
  const paged = await call(client, 'trove_process_output', { process_id: id, max_bytes: 5 });
  expect(paged.text).toContain('--- stdout [bytes 0-5 of 17] ---\nfrom ');
  expect(paged.text).toContain('more output is waiting: call again with stdout_offset=5, stderr_offset=5');
  expect(await call(client, 'trove_process_kill', { process_id: id })).toEqual({
    text: `${id} had already ended (exited with 4); no signal was sent`,
    isError: false,
  });

  const sleeper = /^started (proc-[0-9a-f]+)/.exec(
    (await call(client, 'trove_process_start', { command: 'sleep 300' })).text,
  )![1];
  expect(await call(client, 'trove_process_kill', { process_id: sleeper, signal: 'SIGKILL' })).toEqual({
    text: `sent SIGKILL to ${sleeper}`,
    isError: false,
  });
  const killed = await call(client, 'trove_process_output', { process_id: sleeper, wait_seconds: 30 });
  expect(killed.text.split('\n')[0]).toMatch(new RegExp(`^${sleeper}: (killed|signaled) by SIGKILL \\(exit 137\\)$`));

  const missing = await call(client, 'trove_process_output', { process_id: 'proc-0000' });
  expect(missing.isError).toBe(true);
  expect(missing.text).toMatch(/^trove error \(HTTP 404\): /);
  const badSignal = await call(client, 'trove_process_kill', { process_id: sleeper, signal: 'SIGSEGV' });
  expect(badSignal.isError).toBe(true);
}
