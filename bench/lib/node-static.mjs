#!/usr/bin/env node
/**
 * The floor for a Node file server: node:http serving files from one
 * directory with no framework, no auth and no path checks beyond a basename
 * (open, fstat, read or stream, close). Run by http.mjs as a third side so
 * the table shows what Node itself costs next to nginx.
 *
 *   node bench/lib/node-static.mjs <root>   → prints "listening <port>"
 */
import http from 'node:http';
import { promises as fsp } from 'node:fs';
import { basename, join } from 'node:path';
import { pipeline } from 'node:stream';

const root = process.argv[2];
const server = http.createServer(async (req, res) => {
  let fh;
  try {
    fh = await fsp.open(join(root, basename(decodeURIComponent((req.url ?? '/').split('?')[0]))), 'r');
    const st = await fh.stat();
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': st.size });
    if (st.size <= 64 * 1024) {
      const buf = Buffer.allocUnsafe(st.size);
      await fh.read(buf, 0, st.size, 0);
      await fh.close();
      res.end(buf);
    } else {
      // The stream owns the handle (closes it on end, error and abort); pipeline
      // destroys it when the client goes away mid-response.
      pipeline(fh.createReadStream({ highWaterMark: 256 * 1024 }), res, () => {});
    }
  } catch {
    await fh?.close().catch(() => {});
    if (res.headersSent) res.destroy();
    else res.writeHead(404).end();
  }
});
server.keepAliveTimeout = 75_000;
server.listen(0, '127.0.0.1', () => console.log(`listening ${server.address().port}`));
