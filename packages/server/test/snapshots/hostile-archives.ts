/**
 * Archives built by hand to attack an extraction, shared by the restore tests
 * (malicious.test.ts) and the import tests over HTTP (e2e/snapshots-tar.test.ts):
 * each is refused with the error given here, whatever consumes it.
 */
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { paxEntry, rawEntry, rawHeader, tgz } from './support.js';

/** The limits the archives are built against (the quota cases exceed exactly these). */
export const HOSTILE_LIMITS = { maxBytes: 10 * 1024 * 1024, maxFiles: 100, maxEntryBytes: 1024 * 1024 };

export interface HostileArchive {
  name: string;
  archive: Buffer;
  status: 413 | 422;
  code: 'snapshot_invalid' | 'payload_too_large' | 'quota_exceeded';
  /** The whole reason (the detail after its "Snapshot cannot be restored: " prefix), when it is fixed. */
  detail?: string;
  /** Otherwise a part of it. */
  contains?: string;
}

const ok = (name: string, content = 'fine') => rawEntry({ name, content });

/** Every hostile archive; `outside` is an absolute directory the archives aim at. */
export function hostileArchives(outside: string): HostileArchive[] {
  const invalid = (name: string, archive: Buffer, why: { detail?: string; contains?: string }): HostileArchive => ({
    name,
    archive,
    status: 422,
    code: 'snapshot_invalid',
    ...why,
  });
  const plain = Buffer.concat([ok('a.txt', 'x'.repeat(5000)), ok('b.txt'), Buffer.alloc(1024)]);
  const gz = gzipSync(plain);
  const flipped = Buffer.from(gz);
  flipped[Math.floor(flipped.length / 2)]! ^= 0xff;
  const big = Buffer.alloc(1024 * 1024, 7);
  return [
    invalid('path traversal with ..', tgz([ok('a.txt'), ok(`../../../..${outside}/victim.txt`)]), {
      contains: 'contains ".." (path traversal)',
    }),
    invalid(
      'traversal hidden in the middle of a path',
      tgz([rawEntry({ name: 'a/', type: '5' }), ok('a/../../escape.txt')]),
      {
        detail: 'entry "a/../../escape.txt" contains ".." (path traversal)',
      },
    ),
    invalid('an absolute path', tgz([ok(`${outside}/victim.txt`, 'overwritten')]), {
      detail: `entry "${outside}/victim.txt" is an absolute path`,
    }),
    invalid(
      'symlink-then-write: a link to a directory outside, then a file through it',
      tgz([rawEntry({ name: 'link', type: '2', linkname: outside }), ok('link/planted.txt', 'pwned')]),
      {
        detail:
          'entry "link/planted.txt" is inside "link", which is not a directory in the archive (symlink-then-write)',
      },
    ),
    invalid(
      'symlink-then-write with a relative link and a deeper path',
      tgz([
        rawEntry({ name: 'd/', type: '5' }),
        rawEntry({ name: 'd/up', type: '2', linkname: '../../../../../../../../..' + outside }),
        ok('d/up/sub/planted.txt', 'pwned'),
      ]),
      { contains: 'which is not a directory in the archive (symlink-then-write)' },
    ),
    invalid(
      'a symlink replaced by a directory entry of the same name',
      tgz([
        rawEntry({ name: 'link', type: '2', linkname: outside }),
        rawEntry({ name: 'link/', type: '5' }),
        ok('link/x'),
      ]),
      { detail: 'entry "link/" appears twice or conflicts with an earlier entry' },
    ),
    invalid(
      'a file written over an earlier symlink of the same name',
      tgz([
        rawEntry({ name: 'victim', type: '2', linkname: join(outside, 'victim.txt') }),
        ok('victim', 'overwritten'),
      ]),
      { detail: 'entry "victim" appears twice or conflicts with an earlier entry' },
    ),
    {
      // The header claims 8 GiB; the archive does not even contain that data: refused before it is read.
      name: 'a huge entry over the per-file limit',
      archive: tgz([ok('a.txt'), rawHeader({ name: 'huge.bin', size: 8 * 1024 ** 3 - 1 })], { noEnd: true }),
      status: 413,
      code: 'payload_too_large',
      detail: '"huge.bin" is 8589934591 bytes, over the per-file limit of 1048576 bytes',
    },
    {
      name: 'many entries that add up past the byte quota',
      archive: tgz(Array.from({ length: 11 }, (_, i) => rawEntry({ name: `part${i}`, content: big }))),
      status: 413,
      code: 'quota_exceeded',
      detail: 'its files exceed the namespace quota of 10485760 bytes',
    },
    {
      name: 'too many files',
      archive: tgz(Array.from({ length: 101 }, (_, i) => ok(`f${i}`))),
      status: 413,
      code: 'quota_exceeded',
      detail: 'it holds more than the namespace quota of 100 files',
    },
    invalid('a character device', tgz([ok('a'), rawEntry({ name: 'dev/null', type: '3' })]), {
      detail: 'entry "dev/null" is a device file',
    }),
    invalid('a block device', tgz([rawEntry({ name: 'sda', type: '4' })]), { detail: 'entry "sda" is a device file' }),
    invalid('a FIFO', tgz([rawEntry({ name: 'pipe', type: '6' })]), { detail: 'entry "pipe" is a FIFO' }),
    invalid('an unknown entry type (old GNU sparse)', tgz([rawEntry({ name: 'sparse', type: 'S' })]), {
      detail: 'entry "sparse" has an unsupported type "S"',
    }),
    invalid(
      'a hard link to an absolute path',
      tgz([rawEntry({ name: 'h', type: '1', linkname: join(outside, 'victim.txt') })]),
      {
        detail: `hard link "h" → target "${join(outside, 'victim.txt')}" is an absolute path`,
      },
    ),
    invalid(
      'a hard link climbing out with ..',
      tgz([rawEntry({ name: 'h', type: '1', linkname: '../../outside/victim.txt' })]),
      {
        contains: 'contains ".." (path traversal)',
      },
    ),
    invalid(
      'a hard link through a symlink',
      tgz([
        rawEntry({ name: 'l', type: '2', linkname: outside }),
        rawEntry({ name: 'h', type: '1', linkname: 'l/victim.txt' }),
      ]),
      { detail: 'hard link "h" points outside the archive ("l/victim.txt")' },
    ),
    invalid('a hard link to nothing', tgz([rawEntry({ name: 'h', type: '1', linkname: 'nothing-here' })]), {
      detail: 'hard link "h" points to "nothing-here", which is not a file earlier in the archive',
    }),
    invalid('traversal smuggled in a pax path', tgz([paxEntry({ path: '../../pax-escape.txt' }), ok('innocent.txt')]), {
      detail: 'entry "../../pax-escape.txt" contains ".." (path traversal)',
    }),
    invalid('a NUL byte smuggled in a pax path', tgz([paxEntry({ path: 'a\0/../../b' }), ok('innocent.txt')]), {
      contains: 'contains a NUL byte',
    }),
    invalid(
      'traversal smuggled in a GNU long name',
      tgz([rawEntry({ name: '././@LongLink', type: 'L', content: '../gnu-escape.txt\0' }), ok('innocent.txt')]),
      { detail: 'entry "../gnu-escape.txt" contains ".." (path traversal)' },
    ),
    invalid(
      'an absolute hard link target in a GNU long link name',
      tgz([rawEntry({ name: '././@LongLink', type: 'K', content: '/etc/shadow' }), rawEntry({ name: 'h', type: '1' })]),
      { contains: 'is an absolute path' },
    ),
    invalid(
      'an oversized pax header (memory exhaustion)',
      tgz([rawHeader({ name: 'PaxHeaders/x', type: 'x', size: 64 * 1024 * 1024 })], { noEnd: true }),
      { detail: 'pax header of 67108864 bytes is too large' },
    ),
    invalid('a corrupt header checksum', tgz([rawEntry({ name: 'a.txt', content: 'x', badChecksum: true })]), {
      detail: 'tar header checksum mismatch (the archive is corrupt or not a tar file)',
    }),
    invalid('data that is not gzip', plain, {
      contains: 'the compressed data is corrupt or truncated',
    }),
    invalid('a gzip stream cut short', gz.subarray(0, gz.length - 20), {}),
    invalid('a tar cut in the middle of an entry', gzipSync(plain.subarray(0, 3000)), {
      detail: 'the archive ends in the middle of an entry (truncated)',
    }),
    invalid('no end-of-archive marker', tgz([ok('a.txt')], { noEnd: true }), {
      detail: 'the archive has no end-of-archive marker (truncated)',
    }),
    invalid('a flipped byte in the gzip data', flipped, {}),
    invalid('a file entry naming the root', tgz([ok('./')]), { detail: 'a file entry names the archive root' }),
    invalid('a symlink entry naming the root', tgz([rawEntry({ name: '.', type: '2', linkname: '/' })]), {
      detail: 'a symlink entry names the archive root',
    }),
  ];
}
