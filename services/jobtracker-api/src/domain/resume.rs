//! Resume file names.

use std::ops::Deref;

use super::{Invalid, limits};

/// A resume's file name: 1 to [`limits::FILE_NAME_MAX_CHARS`] characters, no path, quotes or
/// control characters, not hidden, no white space around it, and none of the invisible
/// formatting characters that make a name read other than it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileName(String);

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

impl FileName {
    /// Checks the `file_name` of an upload.
    pub fn parse(value: String) -> Result<Self, Invalid> {
        let bad = value.is_empty()
            || value.chars().count() > limits::FILE_NAME_MAX_CHARS
            || value.starts_with('.')
            || value.contains(['/', '\\', '"', '\0'])
            || value
                .chars()
                .any(|c| c.is_control() || is_invisible_format(c))
            || value.trim() != value;
        if bad {
            Err(Invalid::new(
                "file_name",
                format!(
                    "file_name must be a plain file name (no path, quotes, control or bidirectional formatting characters, 1-{} characters)",
                    limits::FILE_NAME_MAX_CHARS
                ),
            ))
        } else {
            Ok(Self(value))
        }
    }
}

impl Deref for FileName {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_plain() {
        assert_eq!(&*FileName::parse("cv.pdf".into()).expect("plain"), "cv.pdf");
        assert!(FileName::parse("é".repeat(255)).is_ok());
        for bad in [
            String::new(),
            "é".repeat(256),
            ".hidden".into(),
            "a/b.pdf".into(),
            "a\\b.pdf".into(),
            "a\"b.pdf".into(),
            " cv.pdf".into(),
            "\u{202E}fdp.exe".into(),
            "cv\u{7}.pdf".into(),
        ] {
            assert_eq!(
                FileName::parse(bad).expect_err("refused").field,
                "file_name"
            );
        }
    }
}
