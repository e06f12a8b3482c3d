#!/usr/bin/env bash
# m2m-core's feature combinations (docs/m2m-core.md, "Features"): every combination the docs name
# must compile on its own, and the sending side, the receiving side and everything together must
# pass their tests alone. A plain loop: cargo-hack would do the same after a long install.
set -euo pipefail
cd "$(dirname "$0")/.."

# What the docs tell a service to use.
documented=(
  "client"                          # a sender, settings built in code
  "client,cli"                      # a sender, settings from the environment
  "reqwest-middleware,cli"          # a sender on a reqwest-middleware stack
  "tonic,cli"                       # a gRPC sender
  "verify,cli"                      # a receiver with its own glue
  "axum,cli"                        # an axum receiver (extractors)
  "tower,cli"                       # a tonic or hyper receiver (AuthLayer)
  "admin"                           # a provisioning tool (m2m plan/apply/rotate)
)
for features in "" "${documented[@]}"; do
  echo "--- cargo check -p m2m-core --no-default-features --features '$features'"
  cargo check -q -p m2m-core --no-default-features --features "$features"
done

# Tests (unit and integration; doc examples need the defaults, which `cargo test --workspace`
# runs), per side and with everything on.
for features in "client,cli" "reqwest-middleware,tonic" "verify" "axum,tower,cli" "admin"; do
  echo "--- cargo test -p m2m-core --no-default-features --features '$features'"
  cargo test -q -p m2m-core --no-default-features --features "$features" --lib --tests
done
echo "--- cargo test -p m2m-core --all-features"
cargo test -q -p m2m-core --all-features
