# The Krait broker image: `krait-broker` and the `krait` CLI (so `kubectl exec <pod> -- krait ...`
# works), on a small Debian runtime, as the non-root user 10001 that the operator's StatefulSet
# runs it as. The binaries are built outside the image, as a user's CI does:
#
#   cargo build --release --locked -p krait-server -p krait-cli
#   mkdir -p ctx/bin && cp target/release/krait-broker target/release/krait ctx/bin/
#   docker build -f docker/broker.Dockerfile -t ghcr.io/krait-dev/krait-broker:0.1.0 ctx
#
# The binaries need glibc 2.36 and libstdc++ (RocksDB), i.e. Debian bookworm or newer. BASE_IMAGE
# swaps the base for one built locally where no registry is reachable (docker/base/build.sh).
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}

ARG BIN_DIR=bin
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="krait-broker" \
      org.opencontainers.image.description="Krait: a Kafka-compatible broker with RocksDB storage and Raft metadata" \
      org.opencontainers.image.source="https://github.com/krait-dev/krait" \
      org.opencontainers.image.url="https://github.com/krait-dev/krait" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.vendor="Krait"

# The user and the data directory the StatefulSet mounts its volume on (names.rs: DATA_DIR).
RUN groupadd --system --gid 10001 krait \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/krait --no-create-home \
      --shell /usr/sbin/nologin krait \
 && mkdir -p /var/lib/krait \
 && chown 10001:10001 /var/lib/krait

COPY ${BIN_DIR}/krait-broker ${BIN_DIR}/krait /usr/local/bin/

# Sane stand-alone defaults for `docker run -p 9092:9092 <image>`: a cluster of one that clients
# on the host reach at localhost:9092. The operator passes every one of these as a flag, which
# wins over the environment.
ENV KRAIT_DATA_DIR=/var/lib/krait \
    KRAIT_LISTEN=0.0.0.0:9092 \
    KRAIT_ADVERTISE=localhost:9092 \
    KRAIT_HTTP_LISTEN=0.0.0.0:9644

USER 10001:10001
WORKDIR /var/lib/krait
VOLUME ["/var/lib/krait"]
# Kafka, cluster (Raft and replication, gRPC), HTTP (/healthz, /readyz, /metrics).
EXPOSE 9092 9093 9644
# SIGTERM is the broker's clean shutdown: it stops accepting, flushes RocksDB and exits 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["krait-broker"]
