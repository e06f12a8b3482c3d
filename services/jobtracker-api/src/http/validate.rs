//! Input checks shared by the handlers.

use crate::error::ApiError;

/// `prefix_` + 24 lowercase hex, as `db::new_id` makes them.
pub fn id(field: &str, value: &str, prefix: &str) -> Result<(), ApiError> {
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
        Err(ApiError::invalid(
            field,
            format!("{field} must be a {prefix}_ id"),
        ))
    }
}

/// A Clerk user id: `user_` + 1–64 alphanumerics.
pub fn user_id(value: &str) -> Result<(), ApiError> {
    let ok = value.strip_prefix("user_").is_some_and(|r| {
        (1..=64).contains(&r.len()) && r.bytes().all(|b| b.is_ascii_alphanumeric())
    });
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "user_id",
            "user_id must be a Clerk user id (user_…)",
        ))
    }
}

/// Non-empty after trimming, at most `max` characters.
pub fn text(field: &str, value: &str, max: usize) -> Result<(), ApiError> {
    let n = value.trim().chars().count();
    if n == 0 {
        return Err(ApiError::invalid(
            field,
            format!("{field} must not be empty"),
        ));
    }
    if n > max {
        return Err(ApiError::invalid(
            field,
            format!("{field} must be at most {max} characters"),
        ));
    }
    if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(ApiError::invalid(
            field,
            format!("{field} must not contain control characters"),
        ));
    }
    Ok(())
}

/// Optional text.
pub fn opt_text(field: &str, value: Option<&str>, max: usize) -> Result<(), ApiError> {
    value.map_or(Ok(()), |v| text(field, v, max))
}

/// An http(s) URL of at most 2,000 characters, printable ASCII only (an international domain or
/// path is sent in its ASCII form): no control, format or bidi character reaches the store.
pub fn url(field: &str, value: &str) -> Result<(), ApiError> {
    let v = value.trim();
    let ok = (v.starts_with("https://") || v.starts_with("http://"))
        && v.len() <= 2000
        && v.bytes().all(|b| b.is_ascii_graphic())
        && v.len() > 8;
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(
            field,
            format!("{field} must be an http(s) URL"),
        ))
    }
}

/// Page size: default 50, 1–200.
pub fn limit(value: Option<i64>) -> Result<i64, ApiError> {
    match value {
        None => Ok(50),
        Some(n) if (1..=200).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::invalid(
            "limit",
            "limit must be between 1 and 200",
        )),
    }
}

/// A cursor is an id of the listed kind.
pub fn cursor(value: Option<&str>, prefix: &str) -> Result<(), ApiError> {
    value.map_or(Ok(()), |c| id("cursor", c, prefix))
}

/// A resume file name: 1–255 characters, no path, no control characters, not hidden.
/// Invisible formatting characters that make a name read other than it is (`\u{202E}fdp.exe`
/// shows as `exe.pdf`): bidirectional controls, zero-width characters and the byte-order mark.
fn is_invisible_format(c: char) -> bool {
    matches!(
        c,
        '\u{061C}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}'
            | '\u{FEFF}'
    )
}

pub fn file_name(value: &str) -> Result<(), ApiError> {
    let bad = value.is_empty()
        || value.chars().count() > 255
        || value.starts_with('.')
        || value.contains(['/', '\\', '"', '\0'])
        || value
            .chars()
            .any(|c| c.is_control() || is_invisible_format(c))
        || value.trim() != value;
    if bad {
        Err(ApiError::invalid(
            "file_name",
            "file_name must be a plain file name (no path, quotes, control or bidirectional formatting characters, 1-255 characters)",
        ))
    } else {
        Ok(())
    }
}
