/** What a CappedOutput holds, in a form that crosses a process boundary (the exec launcher's channel). */
export interface OutputSnapshot {
  kept: Uint8Array;
  total: number;
}

/**
 * Collects one output stream up to a byte cap. Past the cap the stream is
 * still drained (a writer blocked on a full pipe would otherwise hang until
 * the timeout) but discarded, and the text gets a visible marker.
 */
export class CappedOutput {
  private readonly chunks: Buffer[] = [];
  private kept = 0;
  /** Every byte the process wrote, kept or not. */
  total = 0;

  constructor(
    private readonly name: string,
    private readonly cap: number,
  ) {}

  push(chunk: Buffer): void {
    this.total += chunk.length;
    const room = this.cap - this.kept;
    if (room <= 0) return;
    const part = chunk.length <= room ? chunk : chunk.subarray(0, room);
    this.chunks.push(part);
    this.kept += part.length;
  }

  /** Rebuilds an output collected by another process (see snapshot()). */
  static restore(name: string, cap: number, snap: OutputSnapshot): CappedOutput {
    const out = new CappedOutput(name, cap);
    const kept = Buffer.from(snap.kept.buffer, snap.kept.byteOffset, Math.min(snap.kept.byteLength, cap));
    if (kept.length) out.chunks.push(kept);
    out.kept = kept.length;
    out.total = Math.max(snap.total, kept.length);
    return out;
  }

  snapshot(): OutputSnapshot {
    return { kept: Buffer.concat(this.chunks, this.kept), total: this.total };
  }

  get truncated(): boolean {
    return this.total > this.kept;
  }

  /**
   * UTF-8 text; invalid bytes become U+FFFD. A character cut by the cap is
   * dropped whole rather than shown as a replacement character.
   */
  text(): string {
    let buf = Buffer.concat(this.chunks, this.kept);
    if (this.truncated) buf = buf.subarray(0, completeUtf8Length(buf));
    let s = buf.toString('utf8');
    if (this.truncated) {
      s += `\n[trove: ${this.name} truncated: showing the first ${buf.length} of ${this.total} bytes]\n`;
    }
    return s;
  }
}

/** Length of `buf` without a trailing, incomplete UTF-8 sequence. */
export function completeUtf8Length(buf: Buffer): number {
  const n = buf.length;
  // A sequence is at most 4 bytes: look back at most 3 for its lead byte.
  for (let i = n - 1; i >= 0 && i >= n - 4; i--) {
    const b = buf[i]!;
    if ((b & 0xc0) === 0x80) continue; // continuation byte
    const need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
    return i + need <= n ? n : i;
  }
  return n;
}
