//! Text, URLs and page sizes as clients send them.

use std::ops::Deref;

use super::{Invalid, limits};

/// Text a client sent: not blank, at most its field's characters once trimmed, no control
/// character but newline and tab. Kept as sent unless [`trimmed`](Self::trimmed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text(String);

impl Text {
    /// Checks `value` for `field`, which takes at most `max` characters.
    pub fn parse(field: &'static str, value: String, max: usize) -> Result<Self, Invalid> {
        let n = value.trim().chars().count();
        if n == 0 {
            return Err(Invalid::new(field, format!("{field} must not be empty")));
        }
        if n > max {
            return Err(Invalid::new(
                field,
                format!("{field} must be at most {max} characters"),
            ));
        }
        if value
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t')
        {
            return Err(Invalid::new(
                field,
                format!("{field} must not contain control characters"),
            ));
        }
        Ok(Self(value))
    }

    /// [`parse`](Self::parse) of a value that may be absent.
    pub fn parse_opt(
        field: &'static str,
        value: Option<String>,
        max: usize,
    ) -> Result<Option<Self>, Invalid> {
        value.map(|v| Self::parse(field, v, max)).transpose()
    }

    /// Without leading and trailing white space (still not blank: parsing saw to it).
    pub fn trimmed(self) -> Self {
        let t = self.0.trim();
        if t.len() == self.0.len() {
            self
        } else {
            Self(t.to_owned())
        }
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Deref for Text {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

/// An http(s) URL of at most [`limits::URL_MAX_BYTES`], printable ASCII only (an international
/// domain or path is sent in its ASCII form): no control, format or bidi character reaches the
/// store. Kept as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url(String);

impl Url {
    /// Checks `value` for `field`.
    pub fn parse(field: &'static str, value: String) -> Result<Self, Invalid> {
        let v = value.trim();
        let ok = (v.starts_with("https://") || v.starts_with("http://"))
            && v.len() <= limits::URL_MAX_BYTES
            && v.bytes().all(|b| b.is_ascii_graphic())
            && v.len() > "https://".len();
        if ok {
            Ok(Self(value))
        } else {
            Err(Invalid::new(
                field,
                format!("{field} must be an http(s) URL"),
            ))
        }
    }

    /// The URL as sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The URL as sent.
    pub fn into_string(self) -> String {
        self.0
    }
}

/// How many items a page of a list holds: [`limits::PAGE_SIZE_DEFAULT`] unless `limit` asks
/// for 1 to [`limits::PAGE_SIZE_MAX`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageSize(i64);

impl PageSize {
    /// The page size `limit` asks for.
    pub fn parse(limit: Option<i64>) -> Result<Self, Invalid> {
        match limit {
            None => Ok(Self(limits::PAGE_SIZE_DEFAULT)),
            Some(n) if (1..=limits::PAGE_SIZE_MAX).contains(&n) => Ok(Self(n)),
            Some(_) => Err(Invalid::new(
                "limit",
                format!("limit must be between 1 and {}", limits::PAGE_SIZE_MAX),
            )),
        }
    }

    /// The number of items.
    pub fn get(self) -> i64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_counts_characters_of_the_trimmed_text_and_keeps_it_as_sent() {
        let t = Text::parse("f", format!(" {} ", "é".repeat(3)), 3).expect("three characters");
        assert_eq!(t.as_str(), " ééé ");
        assert_eq!(t.trimmed().as_str(), "ééé");
        let e = Text::parse("f", "abcd".into(), 3).expect_err("four");
        assert_eq!(e, Invalid::new("f", "f must be at most 3 characters"));
        let e = Text::parse("f", " \n\t ".into(), 3).expect_err("blank");
        assert_eq!(e.detail, "f must not be empty");
        let e = Text::parse("f", "a\u{7}".into(), 3).expect_err("bell");
        assert_eq!(e.detail, "f must not contain control characters");
        assert!(Text::parse("f", "a\nb\tc".into(), 5).is_ok());
        assert_eq!(Text::parse_opt("f", None, 1), Ok(None));
    }

    #[test]
    fn urls_are_http_printable_ascii_and_bounded() {
        assert!(Url::parse("u", "https://example.com/a".into()).is_ok());
        let longest = format!("https://{}", "a".repeat(limits::URL_MAX_BYTES - 8));
        assert!(Url::parse("u", longest.clone()).is_ok());
        for bad in [
            "ftp://example.com".to_owned(),
            "https://".to_owned(),
            "https://exa mple.com".to_owned(),
            "https://example.com/\u{202E}".to_owned(),
            format!("{longest}a"),
        ] {
            let e = Url::parse("u", bad).expect_err("refused");
            assert_eq!(e, Invalid::new("u", "u must be an http(s) URL"));
        }
    }

    #[test]
    fn page_sizes_default_and_stay_in_range() {
        assert_eq!(PageSize::parse(None).map(PageSize::get), Ok(50));
        assert_eq!(PageSize::parse(Some(1)).map(PageSize::get), Ok(1));
        assert_eq!(PageSize::parse(Some(200)).map(PageSize::get), Ok(200));
        for bad in [0, -1, 201] {
            let e = PageSize::parse(Some(bad)).expect_err("out of range");
            assert_eq!(e, Invalid::new("limit", "limit must be between 1 and 200"));
        }
    }
}
