/** One event per path per command: what a path ended up as, where its last change was. */
import { describe, expect, it } from 'vitest';
import { Coalescer } from '../../src/changes/coalescer.js';
import { diffScans } from '../../src/changes/scan.js';
import { matchesSource, parseSources, sourceLikePatterns } from '../../src/events/source-filter.js';

describe('Coalescer', () => {
  it('keeps the last change of each path, at the place of that change', () => {
    const c = new Coalescer(100);
    c.add('a', 'written', true);
    c.add('b', 'written', false);
    c.add('a', 'written', false);
    c.add('c', 'deleted', false);
    expect(c.result(10).recorded).toEqual([
      { rel: 'b', kind: 'written' },
      { rel: 'a', kind: 'written' },
      { rel: 'c', kind: 'deleted' },
    ]);
  });

  it('a path created and removed within the unit leaves nothing; one that existed and was removed is deleted', () => {
    const c = new Coalescer(100);
    c.add('tmp', 'written', true);
    c.add('tmp', 'deleted', false);
    c.add('old', 'written', false);
    c.add('old', 'deleted', false);
    c.add('d', 'dir_created', true);
    c.add('d', 'dir_deleted', false);
    // Removed, then made again: it existed before, so it was rewritten.
    c.add('again', 'deleted', false);
    c.add('again', 'written', true);
    const r = c.result(10);
    expect(r.recorded).toEqual([
      { rel: 'old', kind: 'deleted' },
      { rel: 'again', kind: 'written' },
    ]);
    expect(r.total).toBe(2);
  });

  it('records at most `cap` paths and counts all of them', () => {
    const c = new Coalescer(100);
    for (let i = 0; i < 30; i++) c.add(`f${i}`, i % 3 === 0 ? 'deleted' : 'written', false);
    c.add('d', 'dir_created', true);
    const r = c.result(5);
    expect(r.recorded.map((x) => x.rel)).toEqual(['f0', 'f1', 'f2', 'f3', 'f4']);
    expect(r.counts).toEqual({ written: 20, deleted: 10, dirs_created: 1, dirs_deleted: 0 });
    expect(r.total).toBe(31);
    expect(r.approximate).toBe(false);
  });

  it('beyond what it may hold it only counts, and says the counts are approximate', () => {
    const c = new Coalescer(3);
    for (let i = 0; i < 5; i++) c.add(`f${i}`, 'written', true);
    c.add('f0', 'written', false); // held: coalesced
    const r = c.result(10);
    expect(r.recorded.map((x) => x.rel)).toEqual(['f1', 'f2', 'f0']);
    expect(r.total).toBe(5);
    expect(r.approximate).toBe(true);
  });
});

describe('diffScans', () => {
  const scan = (entries: Record<string, string>, complete = true) => ({
    entries: new Map(Object.entries(entries)),
    complete,
  });

  it('removals first (entries before their directory), then creations and rewrites in walk order', () => {
    const before = scan({ d: 'd', 'd/a': 'f:1:1.0:1', b: 'f:1:1.0:2', c: 'f:1:1.0:3' });
    const after = scan({ b: 'f:2:2.0:2', c: 'f:1:1.0:3', e: 'd', 'e/f': 'f:1:3.0:4' });
    expect(diffScans(before, after)).toEqual([
      { rel: 'd/a', kind: 'deleted' },
      { rel: 'd', kind: 'dir_deleted' },
      { rel: 'b', kind: 'written' },
      { rel: 'e', kind: 'dir_created' },
      { rel: 'e/f', kind: 'written' },
    ]);
  });

  it('past a bound nothing is inferred: unseen is not removed, and not new', () => {
    const before = scan({ a: 'f:1:1.0:1', b: 'f:1:1.0:2' }, false);
    const after = scan({ a: 'f:1:1.0:1', z: 'f:1:1.0:9' }, false);
    expect(diffScans(before, after)).toEqual([]);
  });
});

describe('source filters', () => {
  it('parses a comma-separated list and refuses unknown values with the known ones', () => {
    expect(parseSources(undefined)).toBeNull();
    expect(parseSources(' , ')).toBeNull();
    expect(parseSources('exec, api,exec')).toEqual(['exec', 'api']);
    expect(() => parseSources('exec,robot')).toThrow(
      'Invalid source: "robot" (known: exec, api, write, upload; comma-separated)',
    );
  });

  it('api stands for the files API (write, upload, its deletes); events without a source match no filter', () => {
    expect(matchesSource({ source: 'upload' }, ['api'])).toBe(true);
    expect(matchesSource({ source: 'exec' }, ['api'])).toBe(false);
    expect(matchesSource({ exit_code: 0 }, ['exec'])).toBe(false);
    expect(matchesSource({ exit_code: 0 }, null)).toBe(true);
  });

  it('the stored-JSON pattern cannot be matched by a path that spells it out', () => {
    const [pattern] = sourceLikePatterns(['exec']);
    const like = new RegExp('^' + pattern!.replace(/%/g, '.*').replace(/[[\]{}()]/g, '\\$&') + '$');
    expect(like.test(JSON.stringify({ path: 'workspace/x', source: 'exec' }))).toBe(true);
    expect(like.test(JSON.stringify({ path: 'workspace/"source":"exec"', source: 'write' }))).toBe(false);
  });
});
