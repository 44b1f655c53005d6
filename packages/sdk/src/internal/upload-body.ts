/**
 * Turns every accepted upload input into a fetch body, counting bytes as fetch
 * pulls them so `onProgress` reflects what has been handed to the network.
 */

/** Anything `upload()` accepts: text (sent as UTF-8), bytes, a Blob/File, a Web stream, or a Node stream / async iterable. */
export type UploadData =
  | string
  | Uint8Array
  | ArrayBuffer
  | ArrayBufferView
  | Blob
  | ReadableStream<Uint8Array>
  | AsyncIterable<Uint8Array | string>;

/** Progress of an upload: bytes handed to the network so far, and the total when known. */
export interface UploadProgress {
  /** Bytes handed to the network so far. */
  loaded: number;
  /** Known for strings, bytes and Blobs, or when `size` was passed for a stream. */
  total?: number;
}

export interface PreparedBody {
  /** Builds the body for one attempt. */
  make(): BodyInit;
  /** False for one-shot streams: a retry would send a body that has already been consumed. */
  replayable: boolean;
  /** True when `make()` returns a ReadableStream (fetch then needs `duplex: 'half'`). */
  streaming: boolean;
  total: number | undefined;
}

const CHUNK = 64 * 1024;

export function prepareUploadBody(
  data: UploadData,
  opts: { onProgress?: (p: UploadProgress) => void; size?: number } = {},
): PreparedBody {
  const { onProgress } = opts;
  if (typeof data === 'string' || data instanceof ArrayBuffer || ArrayBuffer.isView(data)) {
    const bytes =
      typeof data === 'string'
        ? new TextEncoder().encode(data)
        : data instanceof ArrayBuffer
          ? new Uint8Array(data)
          : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    if (!onProgress)
      return { make: () => bytes as unknown as BodyInit, replayable: true, streaming: false, total: bytes.length };
    return {
      make: () => countingStream(chunksOf(bytes), bytes.length, onProgress),
      replayable: true,
      streaming: true,
      total: bytes.length,
    };
  }
  if (typeof Blob !== 'undefined' && data instanceof Blob) {
    if (!onProgress) return { make: () => data, replayable: true, streaming: false, total: data.size };
    return {
      make: () => countingStream(iterateStream(data.stream()), data.size, onProgress),
      replayable: true,
      streaming: true,
      total: data.size,
    };
  }
  if (isReadableStream(data)) {
    return oneShot(iterateStream(data), opts.size, onProgress);
  }
  if (isAsyncIterable(data)) {
    return oneShot(data, opts.size, onProgress);
  }
  throw new TypeError(
    'upload() data must be a string, Uint8Array, ArrayBuffer, Blob, ReadableStream or an async iterable of bytes (e.g. fs.createReadStream)',
  );
}

function oneShot(
  source: AsyncIterable<Uint8Array | string>,
  total: number | undefined,
  onProgress: ((p: UploadProgress) => void) | undefined,
): PreparedBody {
  let used = false;
  return {
    make: () => {
      if (used) throw new TypeError('A streamed upload body can only be sent once');
      used = true;
      return countingStream(source, total, onProgress);
    },
    replayable: false,
    streaming: true,
    total,
  };
}

function* chunksOf(bytes: Uint8Array): Generator<Uint8Array> {
  for (let i = 0; i < bytes.length; i += CHUNK) yield bytes.subarray(i, i + CHUNK);
}

async function* iterateStream(stream: ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array> {
  const reader = stream.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      yield value;
    }
  } finally {
    reader.releaseLock();
  }
}

function countingStream(
  source: Iterable<Uint8Array | string> | AsyncIterable<Uint8Array | string>,
  total: number | undefined,
  onProgress: ((p: UploadProgress) => void) | undefined,
): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  let loaded = 0;
  let iterator: Iterator<Uint8Array | string> | AsyncIterator<Uint8Array | string> | undefined;
  const report = () => onProgress?.(total === undefined ? { loaded } : { loaded, total });
  return new ReadableStream<Uint8Array>({
    start() {
      report();
    },
    // pull (not start) so bytes are only read as fast as fetch sends them.
    async pull(controller) {
      iterator ??=
        Symbol.asyncIterator in source
          ? (source as AsyncIterable<Uint8Array | string>)[Symbol.asyncIterator]()
          : (source as Iterable<Uint8Array | string>)[Symbol.iterator]();
      const { done, value } = await iterator.next();
      if (done) {
        controller.close();
        return;
      }
      const chunk = typeof value === 'string' ? encoder.encode(value) : toUint8(value);
      loaded += chunk.length;
      controller.enqueue(chunk);
      report();
    },
    async cancel(reason) {
      await iterator?.return?.(reason);
    },
  });
}

function toUint8(value: unknown): Uint8Array {
  if (value instanceof Uint8Array) return value;
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  throw new TypeError(`upload() stream yielded ${typeof value}; expected Uint8Array or string chunks`);
}

function isReadableStream(v: unknown): v is ReadableStream<Uint8Array> {
  return typeof v === 'object' && v !== null && typeof (v as ReadableStream).getReader === 'function';
}

function isAsyncIterable(v: unknown): v is AsyncIterable<Uint8Array | string> {
  return typeof v === 'object' && v !== null && Symbol.asyncIterator in v;
}
