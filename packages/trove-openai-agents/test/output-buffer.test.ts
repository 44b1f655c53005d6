/** Output kept within a limit: head and tail (pure: no server). */
import { describe, expect, it } from 'vitest';
import { OutputBuffer } from '../src/output-buffer.js';

describe('OutputBuffer', () => {
  it('keeps everything under the limit, or without one', () => {
    const b = new OutputBuffer(10);
    b.append('abc');
    b.append('defghij');
    expect(b.toString()).toBe('abcdefghij');
    expect(b.truncated).toBe(false);
    const unlimited = new OutputBuffer(undefined);
    unlimited.append('x'.repeat(1000));
    expect(unlimited.toString()).toHaveLength(1000);
  });

  it('keeps the first and last halves of the limit, however the text arrives', () => {
    const whole = Array.from({ length: 100 }, (_, i) => String.fromCharCode(65 + (i % 26))).join('');
    for (const chunk of [1, 3, 7, 100]) {
      const b = new OutputBuffer(20);
      for (let i = 0; i < whole.length; i += chunk) b.append(whole.slice(i, i + chunk));
      expect(b.truncated).toBe(true);
      expect(b.toString()).toBe(`${whole.slice(0, 10)}\n…[80 characters truncated]…\n${whole.slice(-10)}`);
    }
  });
});
