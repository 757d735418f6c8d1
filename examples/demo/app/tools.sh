#!/bin/sh
# Stand-in for llama.cpp's full image entrypoint (tools.sh): --run, --all-in-one, --help.
# --run hands over to /app/llama-demo, as llama.cpp's hands over to llama-cli.
set -eu
usage() {
  cat <<'USAGE'
Available commands:
  --run (-r): run a model (demo: /app/llama-demo --run, which prints the prompt and the build info)
  --all-in-one (-a): convert, quantize and run (demo: lists the steps)
  --help (-h): this help
USAGE
}
command=${1:-}
[ $# -gt 0 ] && shift
case "$command" in
  --run|-r) exec /app/llama-demo --run "$@" ;;
  --all-in-one|-a) printf 'convert: ok\nquantize: ok\nrun: ok\n' ;;
  --help|-h|"") usage ;;
  *) echo "Unknown command: $command" >&2; usage >&2; exit 1 ;;
esac
