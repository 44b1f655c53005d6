{
  "targets": [
    {
      "target_name": "trove_native",
      "sources": ["native/trove_native.c"],
      "cflags": ["-O2", "-Wall", "-Wextra"]
    },
    {
      "target_name": "trove-enter",
      "type": "executable",
      "sources": ["native/trove_enter.c"],
      "cflags": ["-O2", "-Wall", "-Wextra"],
      "ldflags": ["-static"]
    }
  ]
}
