/**
 * Exact-length reads over an async iterable of chunks (a decompressed tar
 * stream). Reads return views into the producer's chunks where possible, so
 * file content is not copied on the way to disk; only a read that straddles
 * chunks is copied. Pulling is lazy, so backpressure reaches the source.
 */
export class ByteReader {
  private readonly chunks: Buffer[] = [];
  private head = 0; // offset into chunks[0]
  private buffered = 0;
  private ended = false;
  private readonly iter: AsyncIterator<Buffer | string>;
  /** Bytes consumed so far (for error messages). */
  position = 0;

  constructor(source: AsyncIterable<Buffer | string>) {
    this.iter = source[Symbol.asyncIterator]();
  }

  /** Pulls until `n` bytes are buffered; false when the source ended first. */
  private async fill(n: number): Promise<boolean> {
    while (this.buffered < n) {
      if (this.ended) return false;
      const r = await this.iter.next();
      if (r.done) {
        this.ended = true;
        return this.buffered >= n;
      }
      const c = typeof r.value === 'string' ? Buffer.from(r.value) : r.value;
      if (c.length === 0) continue;
      this.chunks.push(c);
      this.buffered += c.length;
    }
    return true;
  }

  /** Exactly `n` bytes, or null when the source ends before them. */
  async read(n: number): Promise<Buffer | null> {
    if (!(await this.fill(n))) return null;
    const first = this.chunks[0]!;
    let out: Buffer;
    if (first.length - this.head >= n) {
      out = first.subarray(this.head, this.head + n);
      this.advance(n);
    } else {
      out = Buffer.allocUnsafe(n);
      let off = 0;
      while (off < n) {
        const c = this.chunks[0]!;
        const take = Math.min(c.length - this.head, n - off);
        c.copy(out, off, this.head, this.head + take);
        off += take;
        this.advance(take);
      }
    }
    return out;
  }

  /** Yields views totalling exactly `n` bytes; throws `onShort()` if the source ends early. */
  async *take(n: number, onShort: () => Error): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (this.buffered === 0 && !(await this.fill(1))) throw onShort();
      const c = this.chunks[0]!;
      const take = Math.min(c.length - this.head, left);
      const view = c.subarray(this.head, this.head + take);
      this.advance(take);
      left -= take;
      yield view;
    }
  }

  /** Skips `n` bytes; false when the source ends first. */
  async skip(n: number): Promise<boolean> {
    let left = n;
    while (left > 0) {
      if (this.buffered === 0 && !(await this.fill(1))) return false;
      const c = this.chunks[0]!;
      const take = Math.min(c.length - this.head, left);
      this.advance(take);
      left -= take;
    }
    return true;
  }

  /** Discards the rest of the source; false if more than `max` bytes were left. */
  async endsWithin(max: number): Promise<boolean> {
    let left = this.buffered;
    this.chunks.length = 0;
    this.head = 0;
    this.buffered = 0;
    while (!this.ended) {
      if (left > max) return false;
      const r = await this.iter.next();
      if (r.done) this.ended = true;
      else left += r.value.length;
    }
    return left <= max;
  }

  private advance(n: number): void {
    this.head += n;
    this.buffered -= n;
    this.position += n;
    if (this.head === this.chunks[0]!.length) {
      this.chunks.shift();
      this.head = 0;
    }
  }
}
