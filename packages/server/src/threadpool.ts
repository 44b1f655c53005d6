/**
 * Imported first by bin.ts, before any module that could touch the libuv
 * thread pool: file uploads, downloads and fsyncs all run on it, and its
 * default of 4 threads queues them behind each other under concurrent load.
 * The size is read once, when the pool starts; an operator's value wins.
 */
process.env.UV_THREADPOOL_SIZE ??= '16';
export {};
