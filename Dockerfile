# syntax=docker/dockerfile:1
# The Drover image: drover-overlord, drover-middle-manager, drover-peon, drover (the CLI) and
# drover-segment; docker-compose.yml picks the one to run. Needs an image registry (rust,
# debian); scripts/compose-cluster builds an equivalent image without one
# (deploy/docker/prebuilt.Dockerfile).
ARG BASE_IMAGE=debian:bookworm-slim

# Build stage. The crate registry and the target directory are BuildKit cache mounts, kept
# between builds: dependencies are downloaded and compiled once, and a source edit rebuilds only
# the crates it touches. (BuildKit is Docker's builder by default since 23.0.)
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --bins \
 && install -D -t /out target/release/drover-overlord target/release/drover-middle-manager \
      target/release/drover-peon target/release/drover target/release/drover-segment

FROM ${BASE_IMAGE} AS runtime
RUN command -v curl >/dev/null || (apt-get update \
      && apt-get install -y --no-install-recommends ca-certificates curl \
      && rm -rf /var/lib/apt/lists/*)
# A user of its own (not root), and the directories the compose file mounts volumes on.
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/drover drover \
 && mkdir -p /var/lib/drover/segments /var/lib/drover/task-logs /var/lib/drover/task /input \
 && chown -R drover:drover /var/lib/drover
COPY --from=build /out/ /usr/local/bin/
USER drover
WORKDIR /var/lib/drover
