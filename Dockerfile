# syntax=docker/dockerfile:1
# The mltb bot: built in a Rust image, run as a non-root user in a slim Debian image with
# the programs it drives (aria2c, rclone, 7-Zip). deploy/docker-compose.yml builds it.
#
#   docker build -t mltb --build-arg MLTB_GIT_COMMIT=$(git rev-parse --short HEAD) .
#
# Not built here (Docker cannot run on the machines this was written on): see
# docs/monitoring.md for what was checked offline.

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS build
WORKDIR /src
COPY . .
# The commit mltb_build_info reports.
ARG MLTB_GIT_COMMIT=unknown
ENV MLTB_GIT_COMMIT=${MLTB_GIT_COMMIT}
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p mltb --bin mltb \
    && install -m 0755 target/release/mltb /usr/local/bin/mltb

FROM debian:${DEBIAN_RELEASE}-slim
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        aria2 rclone p7zip-full ca-certificates curl tini \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home-dir /data --no-create-home mltb \
    && mkdir -p /data \
    && chown mltb:mltb /data
COPY --from=build /usr/local/bin/mltb /usr/local/bin/mltb
USER mltb:mltb
WORKDIR /data
# The data directory holds the SQLite store, the downloads and the log; the API listens on
# every interface of the container (publish it to the host's loopback, or configure TLS).
ENV MLTB_DATA_DIR=/data \
    MLTB_API_BIND=0.0.0.0:8080
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD curl -fsS http://127.0.0.1:8080/health || exit 1
ENTRYPOINT ["tini", "--", "mltb"]
