# syntax=docker/dockerfile:1
# styleproxy: build with Go and libvips-dev, run on slim Debian with the libvips runtime.
#   docker build -t styleproxy .
#   docker build --build-arg WEIGHTS_FILE=squeezenet1_1-b8a52dc0.pth -t styleproxy .   (a local copy
#     of the checkpoint in the build context instead of downloading it)
#   docker run -p 8080:8080 -v styleproxy-data:/data -v $PWD/images:/images:ro \
#     -e STYLEPROXY_ADMIN_TOKEN=... styleproxy

FROM golang:1.26-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends libvips-dev pkg-config && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
# GOEXPERIMENT=simd: GoMLX's AVX-512 kernels where the host CPU has AVX-512 (see README, Speed).
RUN GOEXPERIMENT=simd go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/styleproxy ./cmd/styleproxy

# The weights: downloaded (and checked against their SHA-256) at build time, or copied from the
# build context when WEIGHTS_FILE names a file there.
FROM build AS weights
ARG WEIGHTS_FILE=""
RUN mkdir -p /out/weights && if [ -n "$WEIGHTS_FILE" ]; then \
      cp "/src/$WEIGHTS_FILE" /out/weights/squeezenet1_1-b8a52dc0.pth; \
    else \
      /out/styleproxy weights fetch --dest /out/weights/squeezenet1_1-b8a52dc0.pth; \
    fi && /out/styleproxy version --weights /out/weights --backend go

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends libvips42 ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /data styleproxy \
    && mkdir -p /data /images && chown styleproxy /data
COPY --from=build /out/styleproxy /usr/local/bin/styleproxy
COPY --from=weights /out/weights/squeezenet1_1-b8a52dc0.pth /opt/styleproxy/squeezenet1_1-b8a52dc0.pth
ENV STYLEPROXY_WEIGHTS=/opt/styleproxy/squeezenet1_1-b8a52dc0.pth \
    STYLEPROXY_DATA=/data \
    STYLEPROXY_SOURCE=/images \
    STYLEPROXY_ADDR=:8080
USER styleproxy
VOLUME /data
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s --start-period=30s CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
ENTRYPOINT ["styleproxy"]
CMD ["serve"]
