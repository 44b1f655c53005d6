/*
 * trove_native: what Node's fs API cannot do (src/native.ts loads it;
 * without it the same work is done with buffered writes).
 *
 *   sendfile(socketFd, fileFd, offset, count) → bytes sent (> 0), 0 at end of
 *   file, or -errno (-EAGAIN when the socket's send buffer is full: the socket
 *   is non-blocking, so the call never waits for the client). Synchronous.
 *   Node has no sendfile; without it a download copies every byte twice (page
 *   cache → a buffer → the socket) where nginx copies none in user space. The
 *   caller guarantees both descriptors stay open for the call (it runs on the
 *   JS thread, which alone could close them).
 */
#include <errno.h>
#include <node_api.h>
#include <stdint.h>
#include <sys/sendfile.h>
#include <sys/types.h>

static napi_value fail(napi_env env, const char *msg) {
  napi_throw_type_error(env, NULL, msg);
  return NULL;
}

static napi_value Sendfile(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 4) {
    return fail(env, "sendfile(socketFd, fileFd, offset, count)");
  }
  int32_t out_fd, in_fd;
  int64_t offset, count;
  if (napi_get_value_int32(env, argv[0], &out_fd) != napi_ok || napi_get_value_int32(env, argv[1], &in_fd) != napi_ok ||
      napi_get_value_int64(env, argv[2], &offset) != napi_ok || napi_get_value_int64(env, argv[3], &count) != napi_ok ||
      out_fd < 0 || in_fd < 0 || offset < 0 || count <= 0) {
    return fail(env, "sendfile: descriptors, offset and count must be non-negative integers (count > 0)");
  }
  off_t off = (off_t)offset;
  ssize_t n;
  do {
    n = sendfile(out_fd, in_fd, &off, (size_t)count);
  } while (n < 0 && errno == EINTR);
  napi_value result;
  napi_create_int64(env, n < 0 ? -(int64_t)errno : (int64_t)n, &result);
  return result;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "sendfile", NAPI_AUTO_LENGTH, Sendfile, NULL, &fn);
  napi_set_named_property(env, exports, "sendfile", fn);
  return exports;
}
