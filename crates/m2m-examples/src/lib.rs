//! The examples' tiny gRPC API (`proto/echo.proto`, generated at build time); the examples
//! themselves are in `examples/`, and `tests/examples.rs` runs each of them against clerk-mock.

/// `echo.v1`: `Echo/Say`.
#[allow(missing_docs, missing_debug_implementations, clippy::all)]
pub mod echo {
    tonic::include_proto!("echo.v1");
}
