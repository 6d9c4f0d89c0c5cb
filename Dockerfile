# syntax=docker/dockerfile:1
#
# depthcap images. One Dockerfile, one target per service:
#
#   docker build --target spot-ws          -t depthcap/spot-ws .
#   docker build --target futures-ws       -t depthcap/futures-ws .
#   docker build --target rest-snapshotter -t depthcap/rest-snapshotter .
#   docker build --target writer           -t depthcap/writer .
#   docker build --target uploader         -t depthcap/uploader .
#   docker build --target binance-sim      -t depthcap/binance-sim .
#   docker build --target depthcap         -t depthcap/depthcap .    (the default target)
#
# Build args: VERSION (stamped into `depthcap version` and, when set, into
# the writer's producer version in every Parquet file's metadata),
# GO_VERSION (the go.work toolchain line), RUNTIME_IMAGE.
#
# The builder compiles every binary once, statically (CGO_ENABLED=0,
# -trimpath), per service module with GOWORK=off, as `make build` does: each
# module's `replace ../../pkg` makes it build without the workspace. The
# runtime images are distroless/static (CA certificates, tzdata, no shell),
# run as the unprivileged user 65532 and hold /data owned by that user, so a
# new named volume mounted there is writable. Every image also carries the
# `depthcap` binary for its container healthcheck
# (`depthcap healthcheck <url>`: GET, exit 0 on 200): the layer is shared by
# all images of one build, so it is stored and pulled once.
#
# Needs BuildKit (cache mounts): docker buildx / Docker >= 23; with the old
# docker-compose 1.x set COMPOSE_DOCKER_CLI_BUILD=1 DOCKER_BUILDKIT=1.

ARG GO_VERSION=1.26
ARG RUNTIME_IMAGE=gcr.io/distroless/static-debian12:nonroot

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
WORKDIR /src
ENV CGO_ENABLED=0 GOWORK=off GOTOOLCHAIN=local GOFLAGS=-buildvcs=false

# Module files first: the download layer survives source changes.
COPY pkg/go.mod pkg/go.sum pkg/
COPY services/spot-ws/go.mod services/spot-ws/go.sum services/spot-ws/
COPY services/futures-ws/go.mod services/futures-ws/go.sum services/futures-ws/
COPY services/rest-snapshotter/go.mod services/rest-snapshotter/go.sum services/rest-snapshotter/
COPY services/writer/go.mod services/writer/go.sum services/writer/
COPY services/uploader/go.mod services/uploader/go.sum services/uploader/
COPY services/binance-sim/go.mod services/binance-sim/go.sum services/binance-sim/
COPY services/depthcap/go.mod services/depthcap/go.sum services/depthcap/
RUN --mount=type=cache,target=/go/pkg/mod \
    set -eu; \
    for m in pkg services/*; do (cd "$m" && go mod download); done

COPY pkg/ pkg/
COPY services/ services/

ARG TARGETOS
ARG TARGETARCH
ARG VERSION=
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    set -eu; \
    ldflags="-s -w"; \
    if [ -n "$VERSION" ]; then \
      ldflags="$ldflags -X github.com/depthcap/depthcap/services/depthcap/internal/cli.Version=$VERSION"; \
      ldflags="$ldflags -X github.com/depthcap/depthcap/services/writer.Version=$VERSION"; \
    fi; \
    for s in spot-ws futures-ws rest-snapshotter writer uploader binance-sim depthcap; do \
      echo "build $s"; \
      (cd "services/$s" && GOOS="$TARGETOS" GOARCH="$TARGETARCH" \
        go build -trimpath -ldflags "$ldflags" -o "/out/$s" "./cmd/$s"); \
    done; \
    mkdir -p /out/data

# Shared base of every image: no shell, non-root, /data for DATA_DIR.
FROM ${RUNTIME_IMAGE} AS runtime
COPY --from=build --chown=65532:65532 /out/data /data
COPY --from=build /out/depthcap /usr/local/bin/depthcap
ENV DATA_DIR=/data
WORKDIR /data
USER 65532:65532

# METRICS_ADDR: the services listen on 127.0.0.1 by default; in a container
# /metrics, /healthz and /readyz must be reachable from the network.

FROM runtime AS spot-ws
COPY --from=build /out/spot-ws /usr/local/bin/spot-ws
ENV METRICS_ADDR=:9101
EXPOSE 9101
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["/usr/local/bin/depthcap", "healthcheck", "-timeout", "3s", "http://127.0.0.1:9101/readyz"]
ENTRYPOINT ["/usr/local/bin/spot-ws"]

FROM runtime AS futures-ws
COPY --from=build /out/futures-ws /usr/local/bin/futures-ws
ENV METRICS_ADDR=:9102
EXPOSE 9102
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["/usr/local/bin/depthcap", "healthcheck", "-timeout", "3s", "http://127.0.0.1:9102/readyz"]
ENTRYPOINT ["/usr/local/bin/futures-ws"]

FROM runtime AS rest-snapshotter
COPY --from=build /out/rest-snapshotter /usr/local/bin/rest-snapshotter
ENV METRICS_ADDR=:9103
EXPOSE 9103
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["/usr/local/bin/depthcap", "healthcheck", "-timeout", "3s", "http://127.0.0.1:9103/readyz"]
ENTRYPOINT ["/usr/local/bin/rest-snapshotter"]

FROM runtime AS writer
COPY --from=build /out/writer /usr/local/bin/writer
ENV METRICS_ADDR=:9104
EXPOSE 9104
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
  CMD ["/usr/local/bin/depthcap", "healthcheck", "-timeout", "3s", "http://127.0.0.1:9104/readyz"]
ENTRYPOINT ["/usr/local/bin/writer"]

FROM runtime AS uploader
COPY --from=build /out/uploader /usr/local/bin/uploader
ENV METRICS_ADDR=:9105
EXPOSE 9105
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["/usr/local/bin/depthcap", "healthcheck", "-timeout", "3s", "http://127.0.0.1:9105/readyz"]
ENTRYPOINT ["/usr/local/bin/uploader"]

FROM runtime AS binance-sim
COPY --from=build /out/binance-sim /usr/local/bin/binance-sim
ENV METRICS_ADDR=:9903 SIM_SPOT_ADDR=0.0.0.0:9901 SIM_FUTURES_ADDR=0.0.0.0:9902
EXPOSE 9901 9902 9903
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["/usr/local/bin/depthcap", "healthcheck", "-timeout", "3s", "http://127.0.0.1:9903/readyz"]
ENTRYPOINT ["/usr/local/bin/binance-sim"]

# The all-in-one pipeline and the tools (import, verify, book, tail,
# healthcheck): `docker run depthcap/depthcap run`, `... demo`,
# `... import <file>`. Last stage, so the default target.
FROM runtime AS depthcap
ENTRYPOINT ["/usr/local/bin/depthcap"]
CMD ["--help"]
