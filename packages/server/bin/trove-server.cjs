#!/usr/bin/env node
// The `trove-server` command, and the one way every launcher starts the server (npm start, the tests,
// the benchmarks). A committed file (not dist/) so that npm links the binary at install time, before the
// first build has produced dist/.
//
// CommonJS on purpose: libuv sizes its thread pool once, from UV_THREADPOOL_SIZE, when the pool first
// starts, and Node's ES module loader starts it (reading the entry file) before an ES module's first line
// runs. Uploads, downloads and fsyncs all run on the pool; the default of 4 threads queues concurrent
// uploads behind each other's fsyncs. An operator's value wins.
'use strict';
process.env.UV_THREADPOOL_SIZE ??= '16';
import('../dist/bin.js').catch((err) => {
  process.stderr.write(`fatal: ${err && err.stack ? err.stack : String(err)}\n`);
  process.exit(1);
});
