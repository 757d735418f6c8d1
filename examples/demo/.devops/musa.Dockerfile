# Demo stand-in for llama.cpp's .devops/musa.Dockerfile; it builds with no registry.
# linux/amd64 builds for real: src/llama-demo.c compiled with Debian's gcc, on the Debian base that
# scripts/provision-docker.sh makes with mmdebstrap. Other arches (built under QEMU here) use a
# busybox root file system (prepare-rootfs.sh) and app/llama-demo.sh, which has the same command
# line. Each published stage (full, light, server) starts from its arch's stage: FROM light-${TARGETARCH}.
ARG BASE_IMAGE=bakegen-demo/debian:bookworm

# --- linux/amd64: compiled on Debian ---------------------------------------------------------
# The same in every variant's Dockerfile, so BuildKit builds it once for all of them.
FROM ${BASE_IMAGE} AS build
# A mirror that is syncing can fail one index for a while: retry before giving up.
RUN for attempt in 1 2 3; do apt-get update && break; sleep $((attempt * 5)); done \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
COPY src/ /src/
RUN mkdir -p /app && gcc -std=c17 -O2 -Wall -Wextra -Werror -DLLAMA_DEMO_TARGET="\"$(gcc -dumpmachine)\"" \
      -o /app/llama-demo /src/llama-demo.c

# full keeps the toolchain, as llama.cpp's full image keeps its conversion tools.
FROM build AS full-amd64
COPY app/tools.sh app/record-build-info.sh /app/

# light (and server): the base and the binary, nothing else.
FROM ${BASE_IMAGE} AS light-amd64
COPY --from=build /app/llama-demo /app/llama-demo
COPY app/record-build-info.sh /app/

# --- other arches: busybox ---------------------------------------------------------------------
FROM scratch AS busybox
ARG TARGETARCH
ADD rootfs/${TARGETARCH}.tar /
COPY app/tools.sh app/record-build-info.sh /app/
COPY app/llama-demo.sh /app/llama-demo

FROM busybox AS full-arm64
FROM busybox AS light-arm64

# --- the published stages ----------------------------------------------------------------------
# The variant's ARGs come after the compile steps above, so a new value rebuilds only these small layers.
FROM full-${TARGETARCH} AS full
ARG TARGETARCH
ARG MUSA_VERSION=rc3.1.1
ENV MUSA_VERSION=$MUSA_VERSION
RUN /app/record-build-info.sh ACCELERATOR=musa TARGETARCH=$TARGETARCH MUSA_VERSION=$MUSA_VERSION
LABEL org.bakegen.demo.accelerator="musa" org.bakegen.demo.musa-version="$MUSA_VERSION"
ENTRYPOINT ["/app/tools.sh"]

FROM light-${TARGETARCH} AS light
ARG TARGETARCH
ARG MUSA_VERSION=rc3.1.1
ENV MUSA_VERSION=$MUSA_VERSION
RUN /app/record-build-info.sh ACCELERATOR=musa TARGETARCH=$TARGETARCH MUSA_VERSION=$MUSA_VERSION
LABEL org.bakegen.demo.accelerator="musa" org.bakegen.demo.musa-version="$MUSA_VERSION"
ENTRYPOINT ["/app/llama-demo"]

FROM light-${TARGETARCH} AS server
ARG TARGETARCH
ARG MUSA_VERSION=rc3.1.1
ENV MUSA_VERSION=$MUSA_VERSION
RUN /app/record-build-info.sh ACCELERATOR=musa TARGETARCH=$TARGETARCH MUSA_VERSION=$MUSA_VERSION
LABEL org.bakegen.demo.accelerator="musa" org.bakegen.demo.musa-version="$MUSA_VERSION"
ENV LLAMA_ARG_HOST=0.0.0.0 LLAMA_ARG_PORT=8080
EXPOSE 8080
ENTRYPOINT ["/app/llama-demo", "--server"]
