/**
 * A background process's output on disk, written by the launcher as it
 * arrives (processes/output-store.ts reads it, on any node of a cluster).
 *
 * One stream is a series of append-only segment files `<stream>.<offset>`,
 * named by the absolute offset of their first byte (16 decimal digits, so
 * names sort as numbers). Each holds `segmentBytes` (1/16 of the cap); when
 * the retained bytes would pass the cap, the oldest segment is removed. So
 * offsets are never reused, the retained start is the first segment's name
 * (everything before it is `dropped_bytes`), and a reader needs no lock: a
 * segment it has opened keeps its bytes even if it is removed meanwhile, and
 * bytes once written never change.
 */
import { constants as fsc, promises as fsp } from 'node:fs';
import { join } from 'node:path';

export type StreamName = 'stdout' | 'stderr';

/** Segments per cap: retention moves in steps of 1/16 of it. */
export const SEGMENTS_PER_CAP = 16;

export function segmentBytesFor(capBytes: number): number {
  return Math.max(1, Math.ceil(capBytes / SEGMENTS_PER_CAP));
}

export function segmentName(stream: StreamName, start: number): string {
  return `${stream}.${String(start).padStart(16, '0')}`;
}

/** The start offset a segment file name stands for, or null when the name is not one of `stream`'s segments. */
export function parseSegmentName(stream: StreamName, name: string): number | null {
  if (name.length !== stream.length + 17 || !name.startsWith(`${stream}.`)) return null;
  const digits = name.slice(stream.length + 1);
  return /^\d{16}$/.test(digits) ? Number(digits) : null;
}

const CREATE_FLAGS = fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_APPEND | fsc.O_NOFOLLOW;

export class RingWriter {
  private fh: fsp.FileHandle | null = null;
  private segmentFill = 0;
  /** Start offsets of the segments on disk, oldest first. */
  private readonly segments: number[] = [];
  private readonly segmentBytes: number;
  /** Bytes written so far (the next offset). */
  total = 0;
  /** Appends run one after the other whatever their callers do: the file layout depends on it. */
  private last: Promise<void> = Promise.resolve();

  constructor(
    private readonly dir: string,
    readonly stream: StreamName,
    private readonly capBytes: number,
  ) {
    this.segmentBytes = segmentBytesFor(capBytes);
  }

  /** Offset of the oldest retained byte: what was dropped before it. */
  get dropped(): number {
    return this.segments[0] ?? this.total;
  }

  /** Appends `chunk` after everything appended before it. */
  append(chunk: Buffer): Promise<void> {
    const next = this.last.then(() => this.write(chunk));
    this.last = next.catch(() => {});
    return next;
  }

  private async write(chunk: Buffer): Promise<void> {
    let at = 0;
    while (at < chunk.length) {
      if (!this.fh || this.segmentFill >= this.segmentBytes) await this.rotate();
      const n = Math.min(chunk.length - at, this.segmentBytes - this.segmentFill);
      let done = 0;
      while (done < n) {
        const { bytesWritten } = await this.fh!.write(chunk, at + done, n - done);
        done += bytesWritten;
      }
      at += n;
      this.segmentFill += n;
      this.total += n;
      await this.trim();
    }
  }

  /** Closes the current segment once every append has run. */
  async close(): Promise<void> {
    await this.last;
    await this.closeSegment();
  }

  private async closeSegment(): Promise<void> {
    const fh = this.fh;
    this.fh = null;
    await fh?.close().catch(() => {});
  }

  private async rotate(): Promise<void> {
    await this.closeSegment();
    this.fh = await fsp.open(join(this.dir, segmentName(this.stream, this.total)), CREATE_FLAGS, 0o600);
    this.segments.push(this.total);
    this.segmentFill = 0;
  }

  private async trim(): Promise<void> {
    while (this.segments.length > 1 && this.total - this.segments[0]! > this.capBytes) {
      const start = this.segments.shift()!;
      await fsp.unlink(join(this.dir, segmentName(this.stream, start))).catch(() => {});
    }
  }
}
