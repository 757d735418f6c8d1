#!/bin/sh
# The busybox stand-in for src/llama-demo.c, for the arches built under QEMU (see the
# Dockerfiles): the same command line and output, in busybox sh, with busybox httpd as the server.
#   llama-demo | --version | --help | --run ARGS... | --server [--host H] [--port N]
set -eu
info=/app/build-info

usage() {
  cat <<'USAGE'
usage: llama-demo [--version | --help | --run ARGS... | --server [--host HOST] [--port PORT]]
  (no arguments)  print the build info
  --version       print the version and the compiler on stderr
  --run ARGS      print the arguments and the build info (a stand-in for running a model)
  --server        serve HTTP: GET /health, GET /build-info
USAGE
}

serve() {
  host=${LLAMA_ARG_HOST:-0.0.0.0}
  port=${LLAMA_ARG_PORT:-8080}
  while [ $# -gt 0 ]; do
    case "$1" in
      --port|--host)
        [ $# -ge 2 ] || { echo "llama-demo: $1 needs a value" >&2; exit 2; }
        if [ "$1" = --port ]; then port=$2; else host=$2; fi
        shift 2 ;;
      *) echo "llama-demo: ignoring option '$1'" >&2; shift ;;
    esac
  done
  mkdir -p /tmp/www
  echo '{"status":"ok"}' > /tmp/www/health
  cp "$info" /tmp/www/build-info
  echo "listening on $host:$port"
  # Not exec: as PID 1, httpd would ignore SIGTERM and `docker stop` would wait 10 s for SIGKILL.
  httpd -f -v -p "$host:$port" -h /tmp/www &
  server=$!
  trap 'kill "$server" 2>/dev/null; wait "$server" || true; exit 0' TERM INT
  wait "$server"
}

case "${1:-}" in
  "") cat "$info" ;;
  --version)
    # On stderr, as llama.cpp prints it.
    echo "version: 1 (bakegen demo, $(sed -n 's/^ACCELERATOR=//p' "$info" | head -n 1))" >&2
    echo "built with busybox sh for $(uname -m)" >&2 ;;
  --help|-h) usage ;;
  --run|-r) shift; echo "run: $*"; cat "$info" ;;
  --server) shift; serve "$@" ;;
  *) echo "llama-demo: unknown option '$1'" >&2; usage >&2; exit 2 ;;
esac
