//! Id checks shared by the handlers (the rest of a request is parsed into [`crate::domain`]).

use crate::domain::Invalid;

/// `prefix_` + 24 lowercase hex, as `db::new_id` makes them.
pub fn id(field: &'static str, value: &str, prefix: &str) -> Result<(), Invalid> {
    let ok = value
        .strip_prefix(prefix)
        .and_then(|r| r.strip_prefix('_'))
        .is_some_and(|hex| {
            hex.len() == 24
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        });
    if ok {
        Ok(())
    } else {
        Err(Invalid::new(
            field,
            format!("{field} must be a {prefix}_ id"),
        ))
    }
}

/// A Clerk user id: `user_` + 1–64 alphanumerics.
pub fn user_id(value: &str) -> Result<(), Invalid> {
    let ok = value.strip_prefix("user_").is_some_and(|r| {
        (1..=64).contains(&r.len()) && r.bytes().all(|b| b.is_ascii_alphanumeric())
    });
    if ok {
        Ok(())
    } else {
        Err(Invalid::new(
            "user_id",
            "user_id must be a Clerk user id (user_…)",
        ))
    }
}

/// A cursor is an id of the listed kind.
pub fn cursor(value: Option<&str>, prefix: &str) -> Result<(), Invalid> {
    value.map_or(Ok(()), |c| id("cursor", c, prefix))
}
