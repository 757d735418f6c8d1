#!/bin/sh
# Stand-in for llama-server: HTTP on --host/--port (or LLAMA_ARG_PORT, default 8080),
# GET /health answers 200 with {"status":"ok"}, GET /build-info the build info.
set -eu
host=0.0.0.0
port=${LLAMA_ARG_PORT:-8080}
while [ $# -gt 0 ]; do
  case "$1" in
    --port) port=$2; shift 2 ;;
    --host) host=$2; shift 2 ;;
    *) shift ;;
  esac
done
mkdir -p /tmp/www
echo '{"status":"ok"}' > /tmp/www/health
cp /app/build-info /tmp/www/build-info
echo "listening on $host:$port"
exec httpd -f -v -p "$host:$port" -h /tmp/www
