# syntax=docker/dockerfile:1
# NOTE: written but not built or run here: the machine it was written on has a Docker client and no engine.
#
# Image of the leanmote-api server. Build: docker build -t leanmote-api .
# docs/operations.md describes the settings, volumes and how to run it.
#
# Dependencies are compiled in their own layer with cargo-chef, so a change to
# the project's source rebuilds only the workspace crates. The builder and the
# runtime use the same Debian release (bookworm), so the libpq and SQLite
# libraries the binary links against have the same sonames in both stages.

ARG RUST_VERSION=1
ARG CARGO_CHEF_VERSION=0.1.78

FROM rust:${RUST_VERSION}-bookworm AS chef
ARG CARGO_CHEF_VERSION
# The same build packages as .ci/run installs: the build scripts of pq-sys
# and libsqlite3-sys (under diesel) look the libraries up with pkg-config.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libpq-dev libsqlite3-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*
RUN cargo install cargo-chef --locked --version "${CARGO_CHEF_VERSION}"
WORKDIR /app

# The recipe lists the workspace's manifests and lock file, and changes only when they do.
FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
COPY --from=planner /app/recipe.json recipe.json
RUN cargo chef cook --release --locked --recipe-path recipe.json --bin leanmote-api
# The full source includes migrations/, which the binary embeds at compile time.
COPY . .
RUN cargo build --release --locked --bin leanmote-api

FROM debian:bookworm-slim AS runtime
# curl is installed only for HEALTHCHECK: the image has no other HTTP client,
# and the server has no subcommand that checks its own health.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libpq5 libsqlite3-0 ca-certificates curl \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 leanmote \
    && useradd --system --uid 10001 --gid leanmote --home-dir /nonexistent --no-create-home \
       --shell /usr/sbin/nologin leanmote \
    && mkdir /data \
    && chown leanmote:leanmote /data
COPY --from=builder /app/target/release/leanmote-api /usr/local/bin/leanmote-api

# The SQLite database file and its -wal and -shm files live here. PostgreSQL
# deployments leave the volume empty.
VOLUME /data
WORKDIR /data

ENV LEANMOTE_BIND=0.0.0.0:8080 \
    DATABASE_URL=sqlite:///data/leanmote.sqlite3 \
    LEANMOTE_LOG_FORMAT=json
EXPOSE 8080

# A numeric user lets orchestrators that require a non-root user verify it.
USER 10001:10001

# Liveness only: /healthz returns 200 while the process serves HTTP, even when
# the database is down (/readyz checks the database). The shell form lets
# /bin/sh take the port from LEANMOTE_BIND when the check runs, so a changed
# port still works, but the server must listen on 127.0.0.1 or on all addresses.
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
    CMD curl -fsS -o /dev/null "http://127.0.0.1:${LEANMOTE_BIND##*:}/healthz" || exit 1

# The server handles SIGTERM itself: it stops accepting connections at once and
# gives in-flight requests up to LEANMOTE_SHUTDOWN_TIMEOUT_SECS (30 s by default).
# Docker's default stop timeout is 10 s, so run with --stop-timeout 35 or more.
ENTRYPOINT ["leanmote-api"]
CMD ["serve"]
