//! Clerk Backend API: the M2M token endpoints, JWKS and (feature `admin`) machines.

mod client;
mod error;
#[cfg(feature = "admin")]
mod machines;
mod models;

pub use client::{
    CLERK_API_VERSION, CallObserver, ClerkClient, ClerkClientBuilder, DEFAULT_API_BASE_URL,
    Operation, RetryPolicy,
};
pub use error::{ClerkError, ClerkErrorBody, ClerkErrorItem};
#[cfg(feature = "admin")]
pub use machines::{
    CreateMachineRequest, CreatedMachine, DeletedMachine, ListMachinesQuery, MAX_DEFAULT_TOKEN_TTL,
    MAX_ROTATION_GRACE, MAX_SCOPES, Machine, MachineAdmin, MachineList, MachineOrder, MachineScope,
    ScopedMachine, UpdateMachineRequest,
};
pub use models::{
    CreateM2mTokenRequest, CreatedM2mToken, ListM2mTokensQuery, M2mToken, M2mTokenList,
};
