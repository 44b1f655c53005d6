/**
 * A client that stops reading: collects a stream's bytes and pauses it
 * `times` times, once every `every` bytes, for `ms` each time. Long enough
 * pauses fill the socket buffers, so the server must wait for them to drain
 * (sendfile meets EAGAIN). Returns what was collected so far.
 */
export function stallingReader(
  stream: NodeJS.ReadableStream,
  opts: { times: number; every: number; ms: number },
): () => Buffer {
  const chunks: Buffer[] = [];
  let got = 0;
  let stalls = 0;
  stream.on('data', (c: Buffer) => {
    chunks.push(c);
    got += c.length;
    if (stalls < opts.times && got > (stalls + 1) * opts.every) {
      stalls++;
      stream.pause();
      setTimeout(() => stream.resume(), opts.ms);
    }
  });
  return () => Buffer.concat(chunks);
}
