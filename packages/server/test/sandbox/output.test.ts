import { describe, expect, it } from 'vitest';
import { CappedOutput, completeUtf8Length } from '../../src/sandbox/output.js';

describe('CappedOutput', () => {
  it('keeps everything under the cap', () => {
    const o = new CappedOutput('stdout', 10);
    o.push(Buffer.from('hello'));
    o.push(Buffer.from(' you'));
    expect(o.text()).toBe('hello you');
    expect(o.truncated).toBe(false);
    expect(o.total).toBe(9);
  });

  it('keeps the first cap bytes, counts the rest, and marks the text', () => {
    const o = new CappedOutput('stderr', 4);
    o.push(Buffer.from('abc'));
    o.push(Buffer.from('defg'));
    o.push(Buffer.from('hij'));
    expect(o.truncated).toBe(true);
    expect(o.total).toBe(10);
    expect(o.text()).toBe('abcd\n[trove: stderr truncated: showing the first 4 of 10 bytes]\n');
  });

  it('a stream exactly at the cap is not truncated', () => {
    const o = new CappedOutput('stdout', 3);
    o.push(Buffer.from('abc'));
    expect(o.truncated).toBe(false);
    expect(o.text()).toBe('abc');
  });

  it('drops a multi-byte character cut by the cap instead of showing U+FFFD', () => {
    const o = new CappedOutput('stdout', 4);
    o.push(Buffer.from('ab€c')); // € is 3 bytes: a b [e2 82 ac] c — the cap cuts after e2 82
    expect(o.text()).toBe('ab\n[trove: stdout truncated: showing the first 2 of 6 bytes]\n');
  });

  it('replaces invalid bytes when nothing was truncated', () => {
    const o = new CappedOutput('stdout', 100);
    o.push(Buffer.from([0x61, 0xff, 0x62]));
    expect(o.text()).toBe('a\uFFFDb');
  });
});

describe('completeUtf8Length', () => {
  it.each([
    ['ascii', Buffer.from('abc'), 3],
    ['complete 2-byte', Buffer.from('aé'), 3],
    ['cut 2-byte', Buffer.from('aé').subarray(0, 2), 1],
    ['complete 4-byte', Buffer.from('a🎉'), 5],
    ['cut 4-byte after 3', Buffer.from('a🎉').subarray(0, 4), 1],
    ['cut 4-byte after 1', Buffer.from('a🎉').subarray(0, 2), 1],
    ['empty', Buffer.alloc(0), 0],
  ])('%s', (_name, buf, expected) => {
    expect(completeUtf8Length(buf)).toBe(expected);
  });
});
