# syntax=docker/dockerfile:1
#
# One image, all four services.
#
# The four binaries come out of one `cargo build` of the workspace, so building one image that
# holds all of them is both the simplest and the cheapest choice: one build, one tag to push and
# roll out. The container's command picks the service:
#
#   docker run slotcast:dev                          # scheduling (the default CMD)
#   docker run slotcast:dev /usr/local/bin/matching  # or email-notifier, inapp-notifier, sms-notifier
#
# docker-compose.yml sets `command:` per service; the Kubernetes Deployments set `command:`.
# There is no ENTRYPOINT, so the command is the whole argv.

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS builder
WORKDIR /src
COPY . .
# The cache mounts keep the crates.io index, downloaded crates and incremental build output
# between builds. They are not part of the image, so the binaries are copied out of target/.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked \
        -p scheduling -p matching -p email-notifier -p inapp-notifier -p sms-notifier \
 && mkdir -p /out \
 && cp target/release/scheduling target/release/matching \
       target/release/email-notifier target/release/inapp-notifier \
       target/release/sms-notifier /out/

FROM debian:${DEBIAN_RELEASE}-slim AS runtime
# ca-certificates for TLS to SMTP, Postgres and OTLP endpoints; tzdata for the system zone
# database. Rust needs no other shared library here (rustls + ring, no OpenSSL).
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates tzdata \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 slotcast \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin slotcast \
 && install -d -o 10001 -g 10001 /app
COPY --from=builder /out/ /usr/local/bin/
# Numeric user so Kubernetes `runAsNonRoot` can verify it without reading /etc/passwd.
USER 10001:10001
WORKDIR /app
ENV RUST_LOG=info
EXPOSE 8080 8081 8082 8083
# No HEALTHCHECK: the image carries no HTTP client. Orchestrators probe /healthz and /readyz
# from outside (Kubernetes httpGet probes); compose relies on restart policies.
# The binary is PID 1 and handles SIGTERM itself (drain, then exit 0).
STOPSIGNAL SIGTERM
CMD ["/usr/local/bin/scheduling"]
