# Demo stand-in for llama.cpp's .devops/musa.Dockerfile. It starts FROM scratch and adds a
# busybox root file system for TARGETARCH (prepare-rootfs.sh), so it builds offline.
FROM scratch AS build
ARG TARGETARCH
ADD rootfs/${TARGETARCH}.tar /
COPY app/ /app/
ARG MUSA_VERSION=rc3.1.1
ENV MUSA_VERSION=$MUSA_VERSION
RUN /app/record-build-info.sh ACCELERATOR=musa TARGETARCH=$TARGETARCH MUSA_VERSION=$MUSA_VERSION
LABEL org.bakegen.demo.accelerator="musa" org.bakegen.demo.musa-version="$MUSA_VERSION"

# The three published stages reuse the build stage above.
FROM build AS light
ENTRYPOINT ["/app/light.sh"]

FROM build AS full
ENTRYPOINT ["/app/tools.sh"]

FROM build AS server
ENV LLAMA_ARG_PORT=8080
EXPOSE 8080
ENTRYPOINT ["/app/server.sh"]
