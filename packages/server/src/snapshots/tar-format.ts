/**
 * The tar (POSIX pax/ustar) header format, as pure functions over bytes.
 *
 * Names are raw bytes (Buffers), never strings: Linux filenames need not be
 * UTF-8 and a snapshot must round-trip every name an exec can create.
 * Writing uses ustar fields when a value fits and a pax extended header
 * otherwise (long names, sizes ≥ 8 GiB, sub-second mtimes). Reading accepts
 * ustar, pax and GNU (`L`/`K` long names, base-256 numbers) archives.
 *
 * Files with holes use GNU tar's PAX sparse format 1.0 (`tar --sparse` with
 * `--format=pax` writes and reads it): pax records GNU.sparse.major=1,
 * minor=0, name=<real path>, realsize=<apparent size>; the entry's data is a
 * map (decimal numbers, one per line: the count, then offset and length of
 * each data segment; padded to a block) followed by the segments' bytes.
 */

export const BLOCK = 512;

export type EntryKind = 'file' | 'dir' | 'symlink' | 'hardlink';

export interface TarEntry {
  kind: EntryKind;
  /** Raw path bytes, without a trailing slash; `.` for the root directory. */
  path: Buffer;
  /** Symlink or hardlink target (raw bytes); empty for others. */
  linkpath: Buffer;
  mode: number;
  size: number;
  /** Seconds since the epoch plus nanoseconds, kept apart so no precision is lost. */
  mtimeSec: number;
  mtimeNsec: number;
  /**
   * A file stored sparse: `size` is then what the entry holds in the archive
   * (the encoded map plus the data segments), `realSize` the file's apparent size.
   */
  sparse?: { realSize: number };
}

/** One run of data in a sparse file (the bytes in between are holes). */
export interface SparseSegment {
  offset: number;
  length: number;
}

/** What a header block says, before pax/GNU overrides are applied. */
export interface RawHeader {
  typeflag: string;
  name: Buffer;
  linkname: Buffer;
  mode: number;
  size: number;
  mtime: number;
}

export class TarFormatError extends Error {}

const USTAR_MAX_SIZE = 0o77777777777; // 11 octal digits
const SLASH = 0x2f;

function writeOctal(block: Buffer, offset: number, width: number, value: number): void {
  // width includes the terminating NUL
  const s = value.toString(8).padStart(width - 1, '0');
  block.write(s, offset, width - 1, 'ascii');
  block[offset + width - 1] = 0;
}

function fits(bytes: Buffer, max: number): boolean {
  return bytes.length <= max;
}

/** Splits a long name into ustar prefix (≤155) + name (≤100) at a slash, or null. */
function splitUstar(name: Buffer): { prefix: Buffer; name: Buffer } | null {
  if (name.length <= 100) return { prefix: Buffer.alloc(0), name };
  if (name.length > 256) return null;
  // The last slash such that the rest fits in 100 bytes and the prefix in 155.
  for (let i = Math.min(155, name.length - 1); i > 0; i--) {
    if (name[i] === SLASH && name.length - i - 1 <= 100 && name.length - i - 1 > 0) {
      return { prefix: name.subarray(0, i), name: name.subarray(i + 1) };
    }
  }
  return null;
}

/** One pax record: "<len> <key>=<value>\n", where len counts itself. */
function paxRecord(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`, 'ascii'), value, Buffer.from('\n')]);
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return Buffer.concat([Buffer.from(String(len), 'ascii'), body]);
}

/** pax decimal seconds; (sec, nsec) means sec + nsec/1e9 with 0 ≤ nsec < 1e9, also before 1970. */
function mtimeString(sec: number, nsec: number): string {
  if (nsec === 0) return String(sec);
  const neg = sec < 0;
  const whole = neg ? -(sec + 1) : sec;
  const frac = neg ? 1e9 - nsec : nsec;
  return `${neg ? '-' : ''}${whole}.${String(frac).padStart(9, '0').replace(/0+$/, '')}`;
}

function fillHeader(
  block: Buffer,
  offset: number,
  h: {
    name: Buffer;
    prefix: Buffer;
    mode: number;
    size: number;
    mtime: number;
    typeflag: string;
    linkname: Buffer;
  },
): void {
  const b = block.subarray(offset, offset + BLOCK);
  b.fill(0);
  h.name.copy(b, 0, 0, Math.min(100, h.name.length));
  writeOctal(b, 100, 8, h.mode & 0o7777);
  writeOctal(b, 108, 8, 0); // uid: ownership is the server's decision on restore
  writeOctal(b, 116, 8, 0); // gid
  writeOctal(b, 124, 12, h.size);
  writeOctal(b, 136, 12, Math.max(0, Math.min(h.mtime, USTAR_MAX_SIZE)));
  b.write(h.typeflag, 156, 1, 'ascii');
  h.linkname.copy(b, 157, 0, Math.min(100, h.linkname.length));
  b.write('ustar\u000000', 257, 8, 'ascii');
  h.prefix.copy(b, 345, 0, Math.min(155, h.prefix.length));
  b.fill(0x20, 148, 156); // checksum is computed with its own field as spaces
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += b[i]!;
  b.write(sum.toString(8).padStart(6, '0') + '\u0000 ', 148, 8, 'ascii');
}

/**
 * The header block(s) of one entry: a pax extended header when some value
 * does not fit ustar, then the ustar header. Content and padding are the caller's.
 */
export function encodeEntryHeader(e: TarEntry): Buffer {
  const isDir = e.kind === 'dir';
  const records: Buffer[] = [];
  let name = isDir ? Buffer.concat([e.path, Buffer.from('/')]) : e.path;
  if (e.sparse) {
    // GNU tar's layout: the real name lives in GNU.sparse.name; the header
    // names `<dir>/GNUSparseFile.0/<base>`, which a tar without sparse
    // support extracts as the condensed data (pid 0 keeps archives deterministic).
    records.push(paxRecord('GNU.sparse.major', Buffer.from('1')), paxRecord('GNU.sparse.minor', Buffer.from('0')));
    records.push(paxRecord('GNU.sparse.name', e.path));
    records.push(paxRecord('GNU.sparse.realsize', Buffer.from(String(e.sparse.realSize))));
    const slash = e.path.lastIndexOf(SLASH);
    const fake = Buffer.concat([
      e.path.subarray(0, slash + 1),
      Buffer.from('GNUSparseFile.0/'),
      e.path.subarray(slash + 1),
    ]);
    name = splitUstar(fake)
      ? fake
      : Buffer.concat([Buffer.from('GNUSparseFile.0/'), e.path.subarray(slash + 1)]).subarray(0, 100);
  }
  const split = splitUstar(name);
  if (!split) records.push(paxRecord('path', name));
  const linkTooLong = (e.kind === 'symlink' || e.kind === 'hardlink') && !fits(e.linkpath, 100);
  if (linkTooLong) records.push(paxRecord('linkpath', e.linkpath));
  if (e.size > USTAR_MAX_SIZE) records.push(paxRecord('size', Buffer.from(String(e.size))));
  if (e.mtimeNsec !== 0 || e.mtimeSec < 0 || e.mtimeSec > USTAR_MAX_SIZE) {
    records.push(paxRecord('mtime', Buffer.from(mtimeString(e.mtimeSec, e.mtimeNsec))));
  }
  const typeflag = e.kind === 'file' ? '0' : e.kind === 'dir' ? '5' : e.kind === 'symlink' ? '2' : '1';
  const size = e.kind === 'file' ? e.size : 0;
  const data = records.length === 0 ? null : records.length === 1 ? records[0]! : Buffer.concat(records);
  const paxLen = data ? BLOCK + Math.ceil(data.length / BLOCK) * BLOCK : 0;
  const out = Buffer.alloc(paxLen + BLOCK);
  if (data) {
    // The pax header's own name is informational; GNU tar uses "PaxHeaders/<name>".
    const base = e.path.subarray(e.path.lastIndexOf(SLASH) + 1).subarray(0, 80);
    fillHeader(out, 0, {
      name: Buffer.concat([Buffer.from('PaxHeaders/'), base]),
      prefix: Buffer.alloc(0),
      mode: 0o644,
      size: data.length,
      mtime: Math.max(0, Math.min(e.mtimeSec, USTAR_MAX_SIZE)),
      typeflag: 'x',
      linkname: Buffer.alloc(0),
    });
    data.copy(out, BLOCK);
  }
  fillHeader(out, paxLen, {
    name: split ? split.name : name.subarray(0, 100),
    prefix: split ? split.prefix : Buffer.alloc(0),
    mode: e.mode,
    size: Math.min(size, USTAR_MAX_SIZE),
    mtime: e.mtimeSec,
    typeflag,
    linkname: linkTooLong ? e.linkpath.subarray(0, 100) : e.linkpath,
  });
  return out;
}

/**
 * The data map of a sparse entry, padded to a whole block: the number of
 * entries, then offset and length of each, one decimal number per line.
 * Ends with a zero-length entry at `realSize` when the file ends in a hole,
 * as GNU tar writes it.
 */
export function encodeSparseMap(segments: SparseSegment[], realSize: number): Buffer {
  const last = segments[segments.length - 1];
  const all =
    last && last.offset + last.length === realSize ? segments : [...segments, { offset: realSize, length: 0 }];
  const lines: string[] = [String(all.length)];
  for (const s of all) lines.push(String(s.offset), String(s.length));
  const text = Buffer.from(lines.join('\n') + '\n', 'ascii');
  const out = Buffer.alloc(text.length + padding(text.length));
  text.copy(out);
  return out;
}

/** The two zero blocks that end an archive. */
export const END_OF_ARCHIVE = Buffer.alloc(2 * BLOCK);

export function padding(size: number): number {
  const r = size % BLOCK;
  return r === 0 ? 0 : BLOCK - r;
}

export function isZeroBlock(b: Buffer): boolean {
  for (let i = 0; i < BLOCK; i++) if (b[i] !== 0) return false;
  return true;
}

function cString(b: Buffer, offset: number, width: number): Buffer {
  const field = b.subarray(offset, offset + width);
  const nul = field.indexOf(0);
  return nul === -1 ? field : field.subarray(0, nul);
}

function parseNumber(b: Buffer, offset: number, width: number, what: string): number {
  const field = b.subarray(offset, offset + width);
  if (field[0]! & 0x80) {
    // GNU base-256: big-endian two's complement; only non-negative values are meaningful here.
    if (field[0] === 0xff) throw new TarFormatError(`negative ${what} in tar header`);
    let v = field[0]! & 0x7f;
    for (let i = 1; i < width; i++) {
      v = v * 256 + field[i]!;
      if (v > Number.MAX_SAFE_INTEGER) throw new TarFormatError(`${what} in tar header is too large`);
    }
    return v;
  }
  const s = field
    .toString('latin1')
    .replace(/[\0 ]+$/, '')
    .replace(/^ +/, '');
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) throw new TarFormatError(`invalid ${what} field in tar header`);
  return parseInt(s, 8);
}

/** Parses and checksums one header block. */
export function parseHeader(b: Buffer): RawHeader {
  const stored = parseNumber(b, 148, 8, 'checksum');
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const v = i >= 148 && i < 156 ? 0x20 : b[i]!;
    unsigned += v;
    signed += v > 127 ? v - 256 : v;
  }
  if (stored !== unsigned && stored !== signed) {
    throw new TarFormatError('tar header checksum mismatch (the archive is corrupt or not a tar file)');
  }
  const magic = b.toString('latin1', 257, 263);
  let name = cString(b, 0, 100);
  // POSIX ustar carries a name prefix; GNU reuses those bytes for other fields.
  if (magic === 'ustar\0') {
    const prefix = cString(b, 345, 155);
    if (prefix.length > 0) name = Buffer.concat([prefix, Buffer.from('/'), name]);
  }
  const flag = String.fromCharCode(b[156]!);
  return {
    typeflag: flag === '\0' ? '0' : flag,
    name: Buffer.from(name),
    linkname: Buffer.from(cString(b, 157, 100)),
    mode: parseNumber(b, 100, 8, 'mode'),
    size: parseNumber(b, 124, 12, 'size'),
    mtime: parseNumber(b, 136, 12, 'mtime'),
  };
}

export interface PaxValues {
  path?: Buffer;
  linkpath?: Buffer;
  size?: number;
  mtimeSec?: number;
  mtimeNsec?: number;
  /** GNU.sparse.major / minor, as written (only 1.0 is restorable). */
  sparseVersion?: { major?: string; minor?: string };
  /** GNU.sparse.name: the real path of a sparse file. */
  sparseName?: Buffer;
  /** GNU.sparse.realsize: the apparent size of a sparse file (format 1.0). */
  sparseRealSize?: number;
  /** Keys of the older GNU sparse formats (0.0 / 0.1), which are refused. */
  sparseLegacy?: string;
}

function paxNumber(value: Buffer, what: string): number {
  const s = value.toString('latin1');
  if (!/^[0-9]{1,16}$/.test(s) || Number(s) > Number.MAX_SAFE_INTEGER) throw new TarFormatError(`invalid pax ${what}`);
  return Number(s);
}

/** Parses pax records; unknown keys are ignored, malformed records rejected. */
export function parsePax(data: Buffer): PaxValues {
  const out: PaxValues = {};
  let pos = 0;
  while (pos < data.length) {
    if (data[pos] === 0) break; // trailing NUL padding
    const space = data.indexOf(0x20, pos);
    if (space === -1 || space - pos > 20) throw new TarFormatError('malformed pax header record');
    const lenStr = data.toString('latin1', pos, space);
    if (!/^[1-9][0-9]*$/.test(lenStr)) throw new TarFormatError('malformed pax header record length');
    const len = Number(lenStr);
    const end = pos + len;
    if (end > data.length || data[end - 1] !== 0x0a) throw new TarFormatError('malformed pax header record');
    const rec = data.subarray(space + 1, end - 1);
    const eq = rec.indexOf(0x3d);
    if (eq <= 0) throw new TarFormatError('malformed pax header record');
    const key = rec.toString('latin1', 0, eq);
    const value = Buffer.from(rec.subarray(eq + 1));
    if (key === 'path') out.path = value;
    else if (key === 'linkpath') out.linkpath = value;
    else if (key === 'size') out.size = paxNumber(value, 'size');
    else if (key === 'GNU.sparse.major') out.sparseVersion = { ...out.sparseVersion, major: value.toString('latin1') };
    else if (key === 'GNU.sparse.minor') out.sparseVersion = { ...out.sparseVersion, minor: value.toString('latin1') };
    else if (key === 'GNU.sparse.name') out.sparseName = value;
    else if (key === 'GNU.sparse.realsize') out.sparseRealSize = paxNumber(value, 'GNU.sparse.realsize');
    else if (key.startsWith('GNU.sparse.')) out.sparseLegacy = key;
    else if (key === 'mtime') {
      const m = /^(-?[0-9]{1,15})(?:\.([0-9]{1,9})[0-9]*)?$/.exec(value.toString('latin1'));
      if (!m) throw new TarFormatError('invalid pax mtime');
      const sec = Number(m[1]);
      const nsec = Number((m[2] ?? '').padEnd(9, '0'));
      const neg = m[1]!.startsWith('-');
      // "-1.25" is 1.25 s before the epoch: floor to -2 s plus 0.75 s.
      out.mtimeSec = neg && nsec > 0 ? sec - 1 : sec;
      out.mtimeNsec = neg && nsec > 0 ? 1e9 - nsec : nsec;
    }
    pos = end;
  }
  return out;
}
