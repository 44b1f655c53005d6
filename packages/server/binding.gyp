{
  "targets": [
    {
      "target_name": "trove_native",
      "sources": ["native/trove_native.c"],
      "cflags": ["-O2", "-Wall", "-Wextra"]
    }
  ]
}
