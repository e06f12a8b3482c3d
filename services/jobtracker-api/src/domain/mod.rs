//! What the API works with once a request is parsed: each type can only be built by parsing
//! what a client sent against the rules (and the [`limits`]), so a value of it is known to be
//! good, and the store takes nothing else. Handlers parse at the edge, once; a failure names the
//! offending field (422).

mod application;
mod profile;
mod resume;
mod text;

pub use application::{LeaseLength, NewApplication, Reply, StatusRequest};
use jobtracker_types::IdError;
pub use jobtracker_types::limits;
pub use profile::Profile;
pub use resume::FileName;
pub use text::{PageSize, Text, Url};

/// Why a request's value was refused: the offending field and what is wrong, answered as 422.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {field}: {detail}")]
pub struct Invalid {
    /// The field, as the request names it.
    pub field: &'static str,
    /// What is wrong, for the client.
    pub detail: String,
}

/// An id sent in its own field (a path segment, `user_id`, `resume_id`, …): 422 naming that
/// field, e.g. `resume_id must be a res_ id`.
impl From<IdError> for Invalid {
    fn from(e: IdError) -> Self {
        Self::new(e.field, e.to_string())
    }
}

/// The id `value`, of the kind `T`.
pub fn id<T: std::str::FromStr<Err = IdError>>(value: &str) -> Result<T, Invalid> {
    value.parse().map_err(Invalid::from)
}

/// A list's `cursor`: an id of the kind listed, when given.
pub fn cursor<T: std::str::FromStr<Err = IdError>>(
    value: Option<&str>,
) -> Result<Option<T>, Invalid> {
    value
        .map(|c| {
            c.parse().map_err(|e: IdError| {
                Invalid::new("cursor", format!("cursor must be {}", e.expected))
            })
        })
        .transpose()
}

impl Invalid {
    /// `field` is refused because of `detail`.
    pub fn new(field: &'static str, detail: impl Into<String>) -> Self {
        Self {
            field,
            detail: detail.into(),
        }
    }
}
