/**
 * Reads a background process's output from its ring files (the launcher
 * writes them: sandbox/ring-writer.ts describes the layout). Any node reads
 * any process's output from the shared data volume; nothing is held in
 * memory beyond the slice asked for.
 */
import { promises as fsp } from 'node:fs';
import { isUtf8 } from 'node:buffer';
import { join } from 'node:path';
import { parseSegmentName, segmentName, type StreamName } from '../sandbox/ring-writer.js';
import { completeUtf8Length } from '../sandbox/output.js';

/** The retained range of one stream: [start, total). */
export interface StreamRange {
  start: number;
  total: number;
}

export interface OutputSlice extends StreamRange {
  /** Offset of `data` (the requested one, or `start` when that one is no longer retained). */
  offset: number;
  data: Buffer;
}

/** Where a process's output lives: `<data>/processes/<workspace>/<process>/`. */
export function outputDir(dataDir: string, workspaceId: string, processId: string): string {
  return join(dataDir, 'processes', workspaceId, processId);
}

async function segmentsOf(dir: string, stream: StreamName): Promise<number[]> {
  let names: string[];
  try {
    names = await fsp.readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const starts: number[] = [];
  for (const n of names) {
    const s = parseSegmentName(stream, n);
    if (s !== null) starts.push(s);
  }
  return starts.sort((a, b) => a - b);
}

/** Retained start and total of one stream, from its segment files. */
export async function streamRange(dir: string, stream: StreamName): Promise<StreamRange> {
  for (let attempt = 0; ; attempt++) {
    const starts = await segmentsOf(dir, stream);
    if (starts.length === 0) return { start: 0, total: 0 };
    const last = starts[starts.length - 1]!;
    try {
      const st = await fsp.stat(join(dir, segmentName(stream, last)));
      return { start: starts[0]!, total: last + st.size };
    } catch (err) {
      // Removed between the listing and the stat (the ring moved on): list again.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || attempt >= 8) throw err;
    }
  }
}

/**
 * Up to `limit` bytes of `stream` from `offset`; an offset below the retained
 * start reads from the start instead (the caller reports the gap as dropped).
 */
export async function readOutput(dir: string, stream: StreamName, offset: number, limit: number): Promise<OutputSlice> {
  for (let attempt = 0; ; attempt++) {
    const starts = await segmentsOf(dir, stream);
    if (starts.length === 0) return { start: 0, total: 0, offset: 0, data: Buffer.alloc(0) };
    try {
      return await readFrom(dir, stream, starts, offset, limit);
    } catch (err) {
      // A segment went between the listing and its open: the retained start moved, read again.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || attempt >= 8) throw err;
    }
  }
}

async function readFrom(
  dir: string,
  stream: StreamName,
  starts: number[],
  offset: number,
  limit: number,
): Promise<OutputSlice> {
  const start = starts[0]!;
  const last = starts[starts.length - 1]!;
  const lastSize = (await fsp.stat(join(dir, segmentName(stream, last)))).size;
  const total = last + lastSize;
  const from = Math.max(offset, start);
  const want = Math.max(0, Math.min(limit, total - from));
  const data = Buffer.allocUnsafe(want);
  let got = 0;
  // The segment holding `from`, then the next ones.
  let i = starts.length - 1;
  while (i > 0 && starts[i]! > from) i--;
  for (; i < starts.length && got < want; i++) {
    const segStart = starts[i]!;
    const fh = await fsp.open(join(dir, segmentName(stream, segStart)), 'r');
    try {
      let pos = from + got - segStart;
      for (;;) {
        if (got >= want) break;
        const { bytesRead } = await fh.read(data, got, want - got, pos);
        if (bytesRead === 0) break;
        got += bytesRead;
        pos += bytesRead;
      }
    } finally {
      await fh.close();
    }
  }
  return { start, total, offset: from, data: data.subarray(0, got) };
}

export interface EncodedChunk {
  data: string;
  encoding: 'utf-8' | 'base64';
  /** Bytes of the input the chunk covers (a character cut at the end may be left for the next one). */
  bytes: number;
}

/**
 * Output as JSON text: UTF-8 when it is valid UTF-8, else base64. A character
 * cut at the end of a slice that may continue (`more`) is left for the next
 * slice rather than forcing the whole slice to base64; null when the slice is
 * nothing but the start of such a character (wait for the rest).
 */
export function encodeChunk(buf: Buffer, more: boolean): EncodedChunk | null {
  if (isUtf8(buf)) return { data: buf.toString('utf8'), encoding: 'utf-8', bytes: buf.length };
  if (more) {
    const n = completeUtf8Length(buf);
    const lead = buf[n] ?? 0;
    // Only the start of a character that can still complete (a lead byte C2–F4) is worth waiting for.
    if (n < buf.length && lead >= 0xc2 && lead <= 0xf4 && isUtf8(buf.subarray(0, n))) {
      if (n === 0) return null;
      return { data: buf.subarray(0, n).toString('utf8'), encoding: 'utf-8', bytes: n };
    }
  }
  return base64Chunk(buf);
}

export function base64Chunk(buf: Buffer): EncodedChunk {
  return { data: buf.toString('base64'), encoding: 'base64', bytes: buf.length };
}

/** Removes a process's output directory (retention, namespace deletion). */
export async function removeOutput(dir: string): Promise<void> {
  await fsp.rm(dir, { recursive: true, force: true });
}
