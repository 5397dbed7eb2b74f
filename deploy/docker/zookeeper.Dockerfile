# ZooKeeper from Debian's package (present already in the offline base image).
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
RUN test -x /usr/share/zookeeper/bin/zkServer.sh || (apt-get update \
      && apt-get install -y --no-install-recommends zookeeper netcat-openbsd \
      && rm -rf /var/lib/apt/lists/*)
COPY zoo.cfg /etc/zookeeper/conf/zoo.cfg
RUN mkdir -p /var/lib/zookeeper && echo 1 > /var/lib/zookeeper/myid \
 && chown -R zookeeper:zookeeper /var/lib/zookeeper /var/log/zookeeper
USER zookeeper
ENV ZOOCFGDIR=/etc/zookeeper/conf ZOO_LOG_DIR=/var/log/zookeeper
CMD ["/usr/share/zookeeper/bin/zkServer.sh", "start-foreground"]
