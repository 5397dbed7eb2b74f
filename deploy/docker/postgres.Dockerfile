# PostgreSQL 15 from Debian's package (present already in the offline base image), with a
# `druid` user and database made on first start.
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
RUN test -x /usr/lib/postgresql/15/bin/postgres || (apt-get update \
      && apt-get install -y --no-install-recommends postgresql-15 \
      && rm -rf /var/lib/apt/lists/*)
COPY postgres-start.sh /usr/local/bin/postgres-start.sh
RUN mkdir -p /var/lib/postgresql/data /var/run/postgresql \
 && chown -R postgres:postgres /var/lib/postgresql /var/run/postgresql
USER postgres
ENV PGDATA=/var/lib/postgresql/data
CMD ["/usr/local/bin/postgres-start.sh"]
