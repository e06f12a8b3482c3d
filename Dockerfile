# One image for every service binary: clerk-mock, jobtracker-api, candidate-representer,
# job-applier, and the m2m CLI. Compose picks the binary with `command`. (devstack, the
# everything-in-one-process alternative to compose, is not in it: it is the slowest binary to
# compile and has no use in a container.)
#
# Built with BuildKit (the default of `docker build` and of `docker compose up --build`). The
# crate registry and cargo's target directory live in cache mounts that outlive the build, so
# after an edit only the crates that changed (and those that depend on them) are compiled again.

FROM rust:1.95-slim-bookworm AS builder
WORKDIR /src
COPY . .
# The release profile without debug info and, for the workspace's own crates, incremental (its
# state lives in the target cache): an edit recompiles only what it changed. Only the binaries
# the image ships are built. The mounts are not part of the image: the binaries are copied out.
ENV CARGO_PROFILE_RELEASE_DEBUG=0 CARGO_PROFILE_RELEASE_INCREMENTAL=true
RUN --mount=type=cache,id=jobtracker-m2m-cargo-registry,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,id=jobtracker-m2m-target,target=/src/target,sharing=locked \
    cargo build --release --locked \
      -p clerk-mock-service -p jobtracker-api -p candidate-representer -p job-applier \
      -p m2m-cli --bins \
 && mkdir -p /out \
 && cp target/release/clerk-mock target/release/jobtracker-api target/release/candidate-representer \
       target/release/job-applier target/release/m2m /out/

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --uid 10001 --create-home --shell /usr/sbin/nologin app \
 && mkdir -p /outbox /data \
 && chown app:app /outbox /data
COPY --from=builder /out/ /usr/local/bin/
USER app
WORKDIR /data
ENV RUST_LOG=info LOG_FORMAT=json
CMD ["jobtracker-api"]
