/**
 * The optional native addon (native/trove_native.c, built by `npm ci` through
 * node-gyp into build/Release): sendfile for downloads. When it is missing
 * (no compiler, not Linux) or disabled with TROVE_NATIVE_IO=0, everything
 * works the same way through buffered writes, only with more copying.
 */
import { createRequire } from 'node:module';

export interface NativeIo {
  /** Bytes sent (> 0), 0 at end of file, or -errno (-EAGAIN: the socket's send buffer is full). */
  sendfile(socketFd: number, fileFd: number, offset: number, count: number): number;
}

let loaded: NativeIo | null | undefined;

/** The addon, or null when it is not built or TROVE_NATIVE_IO=0 (read on every call, so tests can switch). */
export function nativeIo(): NativeIo | null {
  if (process.env.TROVE_NATIVE_IO === '0') return null;
  if (loaded === undefined) {
    loaded = null;
    if (process.platform === 'linux') {
      try {
        // src/ and dist/ are both one level below the package root, where node-gyp builds.
        loaded = createRequire(import.meta.url)('../build/Release/trove_native.node') as NativeIo;
      } catch {
        loaded = null;
      }
    }
  }
  return loaded;
}
