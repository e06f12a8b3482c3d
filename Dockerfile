# One image for every binary: clerk-mock, jobtracker-api, candidate-representer, job-applier,
# m2m and devstack. Compose picks the binary with `command`.

FROM rust:1.95-slim-bookworm AS chef
RUN cargo install cargo-chef --locked --version ^0.1
WORKDIR /src

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
# Dependencies first: this layer is reused until Cargo.toml/Cargo.lock change.
COPY --from=planner /src/recipe.json recipe.json
RUN cargo chef cook --release --locked --recipe-path recipe.json
COPY . .
RUN cargo build --release --locked --bins \
 && mkdir -p /out \
 && cp target/release/clerk-mock target/release/jobtracker-api target/release/candidate-representer \
       target/release/job-applier target/release/m2m target/release/devstack /out/

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
