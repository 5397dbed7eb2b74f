# One image with all three binaries; docker-compose.yml picks the one to run.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --bins \
 && install -D -t /out target/release/drover-overlord target/release/drover-middle-manager target/release/drover-peon

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/ /usr/local/bin/
WORKDIR /var/lib/drover
