/**
 * A file's bytes as an HTTP response body, from an open descriptor: the only
 * module that knows about sockets and sendfile. The files service opens and
 * checks the file (beneath the namespace root) and hands over a descriptor;
 * the route sets the headers and sends the body from here.
 *
 * Small files are read into one buffer, synchronously, as nginx reads: from
 * the page cache that costs a few µs against ~30 µs for a thread-pool round
 * trip, and the head and body leave in one write. Larger ones go out through
 * sendfile(2) (the native addon), or two reused buffers without it.
 */
import fs from 'node:fs';
import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { constants as osConstants } from 'node:os';
import { native } from '../native.js';
import * as io from '../tree/fd-io.js';
import { yieldToLoop } from '../tree/index.js';

/** Bodies up to this size are read into one buffer (readSmallBody) instead of streamed (sendFileBody). */
export const SMALL_BODY = 64 * 1024;
/** Chunk of a large download without sendfile: one read and one socket write each. */
const SEND_CHUNK = 256 * 1024;
/**
 * With sendfile, a chunk written through res.write when the socket is full (or Node still holds earlier
 * bytes): its callback says the socket drained. Small, so most bytes still go through sendfile.
 */
const BRIDGE_CHUNK = 64 * 1024;
/**
 * At most this much per sendfile call, like nginx's sendfile_max_chunk: a file that is not in the page
 * cache is read from disk inside the call, on the event loop, so one call's stall stays bounded.
 */
const SENDFILE_MAX_CHUNK = 2 * 1024 * 1024;
/** Bytes sendfile may push in a row before the loop gets a turn (a fast reader keeps the socket drained). */
const SENDFILE_BURST = 4 * 1024 * 1024;
const EAGAIN = -osConstants.errno.EAGAIN;

/**
 * The first `length` (≤ SMALL_BODY) bytes of `fd`, read synchronously; fewer
 * when the file shrank since it was measured, so a Content-Length taken from
 * the buffer always matches the body. Closes `fd` in every case.
 */
export function readSmallBody(fd: number, length: number): Buffer {
  if (length > SMALL_BODY) {
    io.closeSyncQuietly(fd);
    throw new RangeError(`readSmallBody: ${length} bytes is over ${SMALL_BODY}`);
  }
  try {
    const buf = Buffer.allocUnsafe(length);
    let got = 0;
    while (got < length) {
      const n = fs.readSync(fd, buf, got, length - got, got);
      if (n === 0) break;
      got += n;
    }
    return got === length ? buf : buf.subarray(0, got);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Writes the first `length` bytes of `fd` as the response body, then ends the
 * response; closes `fd` in every case. Headers must have been set (writeHead),
 * not necessarily sent. With sendfile they are flushed on their own first, so
 * the kernel sends the whole body.
 *
 * With the native addon (native.ts), the kernel copies the file to the
 * socket itself: no read into a buffer, no second copy. Its calls never wait
 * (the socket is non-blocking): when the send buffer is full the next chunk
 * goes through res.write instead, and that write's callback, once the socket
 * has drained, is the signal to resume sendfile. That chunk is BRIDGE_CHUNK
 * (64 KiB): with 256 KiB chunks a 1 MiB download cost 0.66 ms of CPU instead
 * of 0.41 and reached 0.72× the downloads/s, most of its bytes copied through
 * user space that sendfile could have sent. sendfile only runs once
 * everything written before it has left Node's buffers, so the bytes stay in
 * order. As with nginx's sendfile, data not in the page cache is read from
 * disk inside the call: each call is capped at SENDFILE_MAX_CHUNK and the
 * loop gets a turn every SENDFILE_BURST bytes.
 *
 * Without the addon (or on a socket without a descriptor: TLS), two buffers are reused for the
 * whole download: one is read into while the other is being written, and a
 * buffer is refilled only after its write callback (the socket holds it until
 * then). A file read stream allocates a fresh off-heap buffer per read
 * instead; at GB/s that volume alone makes V8 run full collections back to
 * back (2.5× the CPU per 1 MiB download, see bench/README.md). At most two
 * chunks are in flight, so a slow client holds 512 KiB, not the file.
 *
 * A body that cannot be completed (the file shrank, the client went away)
 * destroys the response: one shorter than its Content-Length must never look
 * complete.
 */
export async function sendFileBody(
  res: ServerResponse,
  fd: number,
  length: number,
  opts: { sendfile: boolean } = { sendfile: true },
): Promise<void> {
  const headersFirst = opts.sendfile && length > 0 && !res.headersSent;
  if (headersFirst) res.flushHeaders();
  if (await pump(res, fd, length, headersFirst, opts.sendfile)) res.end();
}

/**
 * Writes the first `length` bytes of `fd` to `res`; closes `fd` in every case.
 * True when every byte has reached the kernel; false when the response was
 * destroyed. `sentBefore`: what was written so far (the headers) may still be
 * queued; sendfile waits until it has left.
 */
async function pump(
  res: ServerResponse,
  fd: number,
  length: number,
  sentBefore: boolean,
  sendfile: boolean,
): Promise<boolean> {
  // sendfile needs the socket's descriptor (plain TCP); anything else gets buffered writes throughout.
  const addon = sendfile && socketFd(res.socket) !== null ? native() : null;
  const size = Math.min(SEND_CHUNK, length);
  // Allocated when first needed: with sendfile most downloads never need one.
  const bufs: Array<Buffer | null> = [null, null];
  // Resolve with the write's error (or null): a rejected promise nobody awaits yet would crash the process.
  const inFlight: Array<Promise<Error | null | undefined> | null> = [null, null];
  // A write's callback may never come once the client has gone (data still queued in the response):
  // every wait also ends when the response closes, so the descriptor is always released.
  let onClose: () => void = () => {};
  const closed = new Promise<Error>((resolve) => {
    onClose = () => resolve(new Error('response closed'));
    res.once('close', onClose);
  });
  const settled = (p: Promise<Error | null | undefined>) => Promise.race([p, closed]);
  const fail = () => {
    res.destroy();
    return false;
  };
  let pos = 0;
  let k = 0;
  let burst = 0;
  try {
    while (pos < length) {
      if (addon && (pos > 0 || sentBefore)) {
        // Everything written before must have reached the kernel.
        for (let i = 0; i < 2; i++) {
          const p = inFlight[i];
          if (p && (await settled(p))) return fail();
          inFlight[i] = null;
        }
        if (res.destroyed) return false;
        const sock = socketFd(res.socket);
        if (sock !== null && res.writableLength === 0) {
          const n = addon.sendfile(sock, fd, pos, Math.min(SENDFILE_MAX_CHUNK, length - pos));
          if (n > 0) {
            pos += n;
            burst += n;
            if (burst >= SENDFILE_BURST) {
              burst = 0;
              await yieldToLoop();
            }
            continue;
          }
          // 0: the file shrank since fstat; EPIPE, ECONNRESET…: the client is gone.
          if (n !== EAGAIN) return fail();
          // The send buffer is full: one buffered chunk, whose callback says it drained.
          burst = 0;
        }
      }
      const pending = inFlight[k];
      if (pending && (await settled(pending))) return fail();
      if (res.destroyed) return false;
      // With sendfile this chunk only bridges a full socket. Read on the thread pool: on two cores the copy
      // runs beside the event loop (a synchronous read was 0.6× the downloads/s).
      const buf = (bufs[k] ??= Buffer.allocUnsafeSlow(addon ? Math.min(BRIDGE_CHUNK, size) : size));
      const want = Math.min(buf.length, length - pos);
      const n = await io.read(fd, buf, 0, want, pos);
      if (n === 0) return fail(); // the file shrank since fstat
      pos += n;
      const chunk = n === buf.length ? buf : buf.subarray(0, n);
      inFlight[k] = new Promise((resolve) => res.write(chunk, resolve));
      k ^= 1;
    }
    for (const p of inFlight) if (p && (await settled(p))) return fail();
    return !res.destroyed;
  } catch {
    return fail();
  } finally {
    res.off('close', onClose);
    io.closeSyncQuietly(fd);
  }
}

/** The descriptor of a plain TCP socket (not TLS), or null. */
function socketFd(socket: Socket | null): number | null {
  const sock = socket as (Socket & { _handle?: { fd?: unknown }; encrypted?: boolean }) | null;
  if (!sock || sock.destroyed || sock.encrypted) return null;
  const fd = sock._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : null;
}
