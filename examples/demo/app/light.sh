#!/bin/sh
# Stand-in for llama.cpp's light image (llama-cli): `--version` prints the version to
# stderr as llama.cpp does; anything else prints the build info and exits.
if [ "${1:-}" = "--version" ]; then
  echo "version: 1 (bakegen demo, $(grep ^ACCELERATOR= /app/build-info | cut -d= -f2))" >&2
  exit 0
fi
cat /app/build-info
