# Demo stand-in for llama.cpp's .devops/cuda.Dockerfile. It starts FROM scratch and adds a
# busybox root file system for TARGETARCH (prepare-rootfs.sh), so it builds offline.
FROM scratch AS build
ARG TARGETARCH
ADD rootfs/${TARGETARCH}.tar /
COPY app/ /app/
ARG CUDA_VERSION=12.4.0
ARG CUDA_DOCKER_ARCH=default
ENV CUDA_VERSION=$CUDA_VERSION CUDA_DOCKER_ARCH=$CUDA_DOCKER_ARCH
RUN /app/record-build-info.sh ACCELERATOR=cuda TARGETARCH=$TARGETARCH CUDA_VERSION=$CUDA_VERSION CUDA_DOCKER_ARCH=$CUDA_DOCKER_ARCH
LABEL org.bakegen.demo.accelerator="cuda" org.bakegen.demo.cuda-version="$CUDA_VERSION" org.bakegen.demo.cuda-docker-arch="$CUDA_DOCKER_ARCH"

# The three published stages reuse the build stage above.
FROM build AS light
ENTRYPOINT ["/app/light.sh"]

FROM build AS full
ENTRYPOINT ["/app/tools.sh"]

FROM build AS server
ENV LLAMA_ARG_PORT=8080
EXPOSE 8080
ENTRYPOINT ["/app/server.sh"]
