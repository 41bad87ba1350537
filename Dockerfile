# Fulcrum's container image.
#   docker build --build-arg FULCRUM_COMMIT=$(git rev-parse --short=12 HEAD) -t fulcrum .
#   docker run --rm -e FULCRUM_ADMIN_TOKEN=$(openssl rand -hex 16) --stop-timeout 30 \
#     -p 8080:8080 -p 9090:9090 -v ./fulcrum.yaml:/etc/fulcrum/fulcrum.yaml:ro fulcrum
# SIGTERM drains for global.grace_period (10s by default); Docker's own stop timeout is
# 10s, so give `docker stop` more (--stop-timeout, or stop_grace_period in Compose).
ARG SWIFT_IMAGE=swift:6.2-noble
ARG RUNTIME_IMAGE=ubuntu:noble

FROM ${SWIFT_IMAGE} AS build
WORKDIR /build
# The dependencies first: a change to Fulcrum's own code does not fetch them again.
COPY Package.swift Package.resolve[d] ./
RUN if [ -f Package.resolved ]; then swift package resolve --force-resolved-versions; \
    else swift package resolve; fi
# Tests too: the manifest names their directories.
COPY Plugins ./Plugins
COPY Sources ./Sources
COPY Tests ./Tests
# What `fulcrum --version` names (the image has no .git): --build-arg FULCRUM_COMMIT=$(git rev-parse --short=12 HEAD)
ARG FULCRUM_COMMIT=
# The production build (bench/README.md#the-production-build), with Swift's runtime linked in.
RUN swift build -c release --product fulcrum --static-swift-stdlib \
        -Xswiftc -enforce-exclusivity=unchecked \
    && install -D -m 0755 "$(swift build -c release --show-bin-path)/fulcrum" /staging/fulcrum

FROM ${RUNTIME_IMAGE}
# ca-certificates for HTTPS servers verified against the system store; curl for HEALTHCHECK.
# hadolint ignore=DL3008
RUN export DEBIAN_FRONTEND=noninteractive \
    && apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 10001 fulcrum \
    && useradd --uid 10001 --gid fulcrum --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin fulcrum
COPY --from=build /staging/fulcrum /usr/local/bin/fulcrum
COPY contrib/docker/fulcrum.yaml /etc/fulcrum/fulcrum.yaml
RUN ["fulcrum", "check", "-c", "/etc/fulcrum/fulcrum.yaml"]

# Numeric, so that Kubernetes can check runAsNonRoot.
USER 10001:10001
EXPOSE 8080 9090
# /api/health needs no token, even on a listener beyond loopback.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["curl", "--fail", "--silent", "--show-error", "--max-time", "2", "http://127.0.0.1:9090/api/health"]
ENTRYPOINT ["fulcrum"]
CMD ["run", "-c", "/etc/fulcrum/fulcrum.yaml"]
