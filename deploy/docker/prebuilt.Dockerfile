# The Drover image from binaries built on the host (scripts/compose-cluster puts them in the
# build context), for machines with no image registry: the same runtime as the Dockerfile's,
# on a base image built offline (scripts/docker-base-image).
ARG BASE_IMAGE=drover-base:bookworm
FROM ${BASE_IMAGE}
RUN command -v curl >/dev/null || (apt-get update \
      && apt-get install -y --no-install-recommends ca-certificates curl \
      && rm -rf /var/lib/apt/lists/*)
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/drover drover \
 && mkdir -p /var/lib/drover/segments /var/lib/drover/task-logs /var/lib/drover/task /input \
 && chown -R drover:drover /var/lib/drover
COPY drover-overlord drover-middle-manager drover-peon drover drover-segment /usr/local/bin/
USER drover
WORKDIR /var/lib/drover
