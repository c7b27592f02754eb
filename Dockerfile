# syntax=docker/dockerfile:1
#
# assertd's container image: the static binary make dist builds, on scratch,
# with CA certificates, time zones and a non-root user. Build it after make
# dist (the context needs only dist/):
#
#   make dist
#   docker buildx build --platform linux/amd64,linux/arm64 -t assertd:$(git describe --tags --always) .
#
# The configuration goes in /etc/assertd (a ConfigMap or a bind mount), the
# state in the volume /var/lib/assertd. Remediation steps run inside the
# container, which has no shell and no other programs: use http steps.

# The files the image needs from a distribution: CA certificates, the time
# zone database, and a passwd entry and state directory for the user.
FROM debian:bookworm-slim AS base
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates tzdata \
 && rm -rf /var/lib/apt/lists/*
RUN mkdir -p /rootfs/etc /rootfs/var/lib/assertd \
 && echo 'assertd:x:65532:65532:assertd:/var/lib/assertd:/sbin/nologin' > /rootfs/etc/passwd \
 && echo 'assertd:x:65532:' > /rootfs/etc/group

FROM scratch
ARG TARGETARCH
COPY --from=base /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=base /usr/share/zoneinfo /usr/share/zoneinfo
COPY --from=base /rootfs/etc/passwd /rootfs/etc/group /etc/
COPY --from=base --chown=65532:65532 /rootfs/var/lib/assertd /var/lib/assertd
COPY dist/assertd-linux-${TARGETARCH} /usr/bin/assertd
USER 65532:65532
WORKDIR /var/lib/assertd
VOLUME /var/lib/assertd
EXPOSE 8080
ENTRYPOINT ["/usr/bin/assertd"]
CMD ["run", "--config.file=/etc/assertd/assertd.yaml", "--storage.path=/var/lib/assertd", "--web.listen-address=:8080"]
