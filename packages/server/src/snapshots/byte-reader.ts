/**
 * Exact-length reads over a byte stream (a decompressed tar stream). Reads
 * return views into the producer's chunks where possible, so file content is
 * not copied on the way to disk; only a read that straddles chunks is copied.
 */
const EMPTY = Buffer.alloc(0);

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

  /**
   * Reads a stream chunk by chunk, keeping up to `aheadBytes` queued so the
   * producer (zlib on the thread pool) runs ahead of the consumer. A
   * Readable's own async iterator would instead concatenate its whole buffer
   * on every read, copying every byte once more.
   */
  static fromStream(stream: NodeJS.ReadableStream, aheadBytes: number): ByteReader {
    return new ByteReader(chunksOf(stream, aheadBytes));
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

  /**
   * Exactly `n` bytes if they are already buffered, else null (then await
   * read()). Most tar headers and small files are: this skips a promise per read.
   */
  readNow(n: number): Buffer | null {
    return this.buffered >= n ? this.take0(n) : null;
  }

  /** Exactly `n` bytes, or null when the source ends before them. */
  async read(n: number): Promise<Buffer | null> {
    if (this.buffered < n && !(await this.fill(n))) return null;
    return this.take0(n);
  }

  private take0(n: number): Buffer {
    if (n === 0) return EMPTY;
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

function chunksOf(stream: NodeJS.ReadableStream, aheadBytes: number): AsyncIterable<Buffer> {
  const queue: Buffer[] = [];
  let queued = 0;
  let ended = false;
  let failure: Error | null = null;
  let wake: (() => void) | null = null;
  const notify = () => {
    const w = wake;
    wake = null;
    w?.();
  };
  stream.on('data', (c: Buffer | string) => {
    const b = typeof c === 'string' ? Buffer.from(c) : c;
    queue.push(b);
    queued += b.length;
    if (queued >= aheadBytes) stream.pause();
    notify();
  });
  stream.on('end', () => {
    ended = true;
    notify();
  });
  stream.on('error', (err: Error) => {
    failure = err;
    notify();
  });
  stream.on('close', () => {
    // Destroyed without 'end' or 'error': nothing more will come.
    ended = true;
    notify();
  });
  return {
    [Symbol.asyncIterator]() {
      return {
        async next(): Promise<IteratorResult<Buffer>> {
          for (;;) {
            if (queue.length > 0) {
              const c = queue.shift()!;
              queued -= c.length;
              if (queued < aheadBytes && stream.isPaused()) stream.resume();
              return { value: c, done: false };
            }
            if (failure) throw failure;
            if (ended) return { value: undefined, done: true };
            await new Promise<void>((resolve) => (wake = resolve));
          }
        },
      };
    },
  };
}
