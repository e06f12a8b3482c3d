# Stand-in for Docker Hub's rust:1.95-slim-bookworm, built where no registry can be reached:
# Debian bookworm with the C toolchain the official image carries, and this machine's Rust
# toolchain laid out as the official image lays it out (RUSTUP_HOME, CARGO_HOME, PATH).
# The build context (made by standins.sh) holds toolchain/, rustup and extra-ca/.
FROM debian:bookworm-slim
ENV RUSTUP_HOME=/usr/local/rustup CARGO_HOME=/usr/local/cargo PATH=/usr/local/cargo/bin:$PATH \
    RUST_VERSION=1.95.0
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates gcc libc6-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
# Certificates this machine trusts (its registry proxy), so cargo can fetch crates here.
COPY extra-ca/ /usr/local/share/ca-certificates/
RUN update-ca-certificates
COPY toolchain/ /usr/local/rustup/toolchains/1.95.0-x86_64-unknown-linux-gnu/
COPY rustup /usr/local/cargo/bin/rustup
RUN printf 'version = "12"\ndefault_toolchain = "1.95.0-x86_64-unknown-linux-gnu"\nprofile = "minimal"\nauto_self_update = "disable"\n' \
      > /usr/local/rustup/settings.toml \
 && for t in cargo rustc rustdoc cargo-clippy clippy-driver rustfmt cargo-fmt; do \
      ln -f /usr/local/cargo/bin/rustup /usr/local/cargo/bin/$t; done \
 && rustc --version && cargo --version
