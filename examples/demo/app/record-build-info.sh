#!/bin/sh
# Writes what the image was built with to /app/build-info, one NAME=VALUE a line, so the
# smoke checks (and people) can see which ARGs made it in.
set -eu
{
  for pair in "$@"; do printf '%s\n' "$pair"; done
  printf 'UNAME_M=%s\n' "$(uname -m)"
} > /app/build-info
