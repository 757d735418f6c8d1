# Demo stand-in for llama.cpp's .devops/s390x.Dockerfile (its CPU build for IBM Z); it builds with
# no registry: FROM scratch with the busybox root file system for TARGETARCH (prepare-rootfs.sh makes
# rootfs/s390x.tar) and app/llama-demo.sh, the same command line as the other variants' images.
# Built for linux/s390x, under QEMU on other machines (scripts/provision-docker.sh enables it).
FROM scratch AS base
ARG TARGETARCH
ADD rootfs/${TARGETARCH}.tar /
COPY app/tools.sh app/record-build-info.sh /app/
COPY app/llama-demo.sh /app/llama-demo
RUN /app/record-build-info.sh ACCELERATOR=cpu TARGETARCH=$TARGETARCH
LABEL org.bakegen.demo.accelerator="cpu"

# The three published stages reuse the base above.
FROM base AS full
ENTRYPOINT ["/app/tools.sh"]

FROM base AS light
ENTRYPOINT ["/app/llama-demo"]

FROM base AS server
ENV LLAMA_ARG_HOST=0.0.0.0 LLAMA_ARG_PORT=8080
EXPOSE 8080
ENTRYPOINT ["/app/llama-demo", "--server"]
