/** Result formatting and base64 decoding of the MCP tools. */
import { describe, expect, it } from 'vitest';
import { APIConnectionError, APIError } from 'trove-sdk';
import { decodeBase64, formatError, formatExecResult, MAX_TOOL_OUTPUT } from '../src/index.js';

describe('formatExecResult', () => {
  it('puts the exit code first and stderr after a separator only when there is some', () => {
    expect(formatExecResult({ exitCode: 0, stdout: 'a\n', stderr: '', durationMs: 1 })).toBe('[exit 0]\na\n');
    expect(formatExecResult({ exitCode: 2, stdout: 'a', stderr: 'b\n', durationMs: 1 })).toBe(
      '[exit 2]\na\n--- stderr ---\nb\n',
    );
    expect(formatExecResult({ exitCode: 1, stdout: '', stderr: 'e', durationMs: 1 })).toBe(
      '[exit 1]\n--- stderr ---\ne',
    );
  });
  it('cuts very long output with a note', () => {
    const text = formatExecResult({ exitCode: 0, stdout: 'x'.repeat(MAX_TOOL_OUTPUT + 10), stderr: '', durationMs: 1 });
    expect(text.length).toBeLessThan(MAX_TOOL_OUTPUT + 200);
    expect(text).toMatch(/output cut: \d+ more characters/);
  });
});

describe('formatError', () => {
  it('names the HTTP status and the server’s detail', () => {
    const err = APIError.generate(
      404,
      { detail: 'Path not found: workspace/x', code: 'path_not_found' },
      new Headers(),
    );
    expect(formatError(err)).toBe('trove error (HTTP 404): Path not found: workspace/x');
    expect(formatError(new APIConnectionError('Connection error: refused'))).toBe(
      'trove error: Connection error: refused',
    );
    expect(formatError('weird')).toBe('trove error: weird');
  });
});

describe('decodeBase64', () => {
  it('accepts standard and URL-safe base64, with or without padding and whitespace', () => {
    expect(Buffer.from(decodeBase64('aGVsbG8=')!).toString()).toBe('hello');
    expect(Buffer.from(decodeBase64('aGVsbG8')!).toString()).toBe('hello');
    expect(Buffer.from(decodeBase64('aGVs\nbG8=')!).toString()).toBe('hello');
    expect(Array.from(decodeBase64('-_8')!)).toEqual([251, 255]);
    expect(decodeBase64('')!.length).toBe(0);
  });
  it('rejects anything else instead of silently dropping characters', () => {
    for (const bad of ['not base64!!', 'a', 'aGVsbG8=x', 'aGV=sbG8', 'aGVsbG8==='])
      expect(decodeBase64(bad), bad).toBeNull();
  });
});
