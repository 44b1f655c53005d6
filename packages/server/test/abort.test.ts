import { describe, expect, it } from 'vitest';
import { linkedAbort } from '../src/abort.js';

describe('linkedAbort', () => {
  it('aborts with the reason of whichever source aborts first', () => {
    const a = new AbortController();
    const b = new AbortController();
    const linked = linkedAbort([a.signal, undefined, b.signal]);
    expect(linked.controller.signal.aborted).toBe(false);
    b.abort('closing');
    expect(linked.controller.signal.aborted).toBe(true);
    expect(linked.controller.signal.reason).toBe('closing');
    linked.dispose();
  });

  it('starts aborted when a source already is', () => {
    const a = new AbortController();
    a.abort('gone');
    const linked = linkedAbort([a.signal]);
    expect(linked.controller.signal.reason).toBe('gone');
    linked.dispose();
  });

  it('after dispose a source aborting no longer reaches it', () => {
    const a = new AbortController();
    const linked = linkedAbort([a.signal]);
    linked.dispose();
    a.abort('late');
    expect(linked.controller.signal.aborted).toBe(false);
  });
});
