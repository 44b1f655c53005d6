{
  "targets": [
    {
      "target_name": "trove_sendfile",
      "sources": ["native/sendfile.c"],
      "cflags": ["-O2", "-Wall", "-Wextra"]
    }
  ]
}
