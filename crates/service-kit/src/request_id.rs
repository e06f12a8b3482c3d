//! `x-request-id`: a client's own id is kept (and echoed) only when it is short and of a plain
//! alphabet; anything else is dropped, so the server puts its own in its place. A client's id
//! goes into every log line of its request: unbounded or odd bytes there would let a client
//! choose how much is logged, and what it looks like.

use axum::http::{HeaderMap, HeaderName};

/// The header.
pub const HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Longest id kept, bytes.
pub const MAX_LEN: usize = 64;

/// 1 to [`MAX_LEN`] bytes of `A-Z a-z 0-9 . _ : -`.
pub fn is_acceptable(value: &[u8]) -> bool {
    (1..=MAX_LEN).contains(&value.len())
        && value
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// Removes `x-request-id` from `headers` unless it is there once and [acceptable](is_acceptable):
/// the layer that sets missing ids then gives the request one of the server's own.
pub fn drop_unacceptable(headers: &mut HeaderMap) {
    let mut values = headers.get_all(&HEADER).iter();
    let keep = matches!(
        (values.next(), values.next()),
        (Some(v), None) if is_acceptable(v.as_bytes())
    );
    if !keep {
        headers.remove(&HEADER);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn kept(values: &[&[u8]]) -> Option<Vec<u8>> {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append(HEADER, HeaderValue::from_bytes(v).expect("header value"));
        }
        drop_unacceptable(&mut headers);
        assert!(headers.get_all(HEADER).iter().count() <= 1);
        headers.get(HEADER).map(|v| v.as_bytes().to_vec())
    }

    #[test]
    fn plain_short_ids_are_kept() {
        for id in [
            &b"req_0123456789abcdef"[..],
            b"a",
            b"2f1c.9:trace-id_X",
            "x".repeat(MAX_LEN).as_bytes(),
        ] {
            assert_eq!(kept(&[id]).as_deref(), Some(id));
        }
    }

    #[test]
    fn long_odd_or_repeated_ids_are_dropped() {
        let long = "x".repeat(MAX_LEN + 1);
        let huge = "a".repeat(64 * 1024);
        for values in [
            vec![long.as_bytes()],
            vec![huge.as_bytes()],
            vec![&b"abc\xff"[..]],
            vec![b"id machine_id=mch_admin"],
            vec![b"tab\there"],
            vec![b"quote\"d"],
            vec![b"slash/x"],
            vec![b""],
            vec![b"one", b"two"],
        ] {
            assert_eq!(kept(&values), None, "{values:?}");
        }
        assert_eq!(kept(&[]), None);
    }
}
