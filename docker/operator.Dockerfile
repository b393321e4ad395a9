# The Krait operator image: `krait-operator` on a small Debian runtime, as the non-root user
# 65532 that the Helm chart's Deployment runs it as (`args: [run]`). Built like the broker image:
#
#   cargo build --release --locked -p krait-operator
#   mkdir -p ctx/bin && cp target/release/krait-operator ctx/bin/
#   docker build -f docker/operator.Dockerfile -t ghcr.io/krait-dev/krait-operator:0.1.0 ctx
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}

ARG BIN_DIR=bin
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="krait-operator" \
      org.opencontainers.image.description="Krait operator: runs Krait clusters from KafkaCluster and KafkaTopic resources" \
      org.opencontainers.image.source="https://github.com/krait-dev/krait" \
      org.opencontainers.image.url="https://github.com/krait-dev/krait" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.vendor="Krait"

COPY ${BIN_DIR}/krait-operator /usr/local/bin/

USER 65532:65532
# /metrics, /healthz, /readyz.
EXPOSE 8080
STOPSIGNAL SIGTERM
ENTRYPOINT ["krait-operator"]
CMD ["run"]
