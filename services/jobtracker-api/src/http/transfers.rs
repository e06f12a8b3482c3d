//! How many resume bodies may be in memory at once, and how many of them one user may hold:
//! uploads are read whole before they are stored, downloads are sent from memory, so both are
//! bounded, and one user cannot take every upload slot.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::ApiError;

/// Upload bodies read at once, so their memory is bounded by `UPLOAD_PERMITS × RESUME_MAX_BYTES`;
/// past it an upload waits up to [`WAIT`], then gets 503.
pub const UPLOAD_PERMITS: usize = 8;
/// Resume downloads being sent at once (each holds its file in memory until it is handed to the
/// connection); past it a download waits up to [`WAIT`], then gets 503.
pub const DOWNLOAD_PERMITS: usize = 16;
/// How long a transfer waits for a permit.
pub const WAIT: Duration = Duration::from_secs(1);
/// Size of the pieces a download is handed over in, so its permit is held until the last one.
const CHUNK: usize = 64 * 1024;

/// The permits of one API.
#[derive(Debug)]
pub struct Transfers {
    /// Uploads one user may have in progress at once (`RESUME_UPLOADS_PER_USER`): a user
    /// trickling bodies holds at most this many of the [`UPLOAD_PERMITS`].
    uploads_per_user: usize,
    uploads: Arc<Semaphore>,
    per_user: Mutex<HashMap<String, usize>>,
    downloads: Arc<Semaphore>,
}

impl Transfers {
    /// Permits for an API whose users may each have `uploads_per_user` uploads in progress.
    pub fn new(uploads_per_user: usize) -> Self {
        Self {
            uploads_per_user: uploads_per_user.max(1),
            uploads: Arc::new(Semaphore::new(UPLOAD_PERMITS)),
            per_user: Mutex::new(HashMap::new()),
            downloads: Arc::new(Semaphore::new(DOWNLOAD_PERMITS)),
        }
    }
}

/// One upload admitted: its user's slot and a global permit, both given back on drop.
#[derive(Debug)]
pub struct UploadSlot<'a> {
    transfers: &'a Transfers,
    user: String,
    _permit: OwnedSemaphorePermit,
}

impl Drop for UploadSlot<'_> {
    fn drop(&mut self) {
        self.transfers.release_user(&self.user);
    }
}

impl Transfers {
    fn users(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        self.per_user.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn release_user(&self, user: &str) {
        let mut users = self.users();
        if let Some(n) = users.get_mut(user) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                users.remove(user);
            }
        }
    }

    /// A slot for one of `user`'s uploads: 503 at once if the user has `uploads_per_user` in
    /// progress, or after [`WAIT`] if every permit is taken.
    pub async fn upload(&self, user: &str) -> Result<UploadSlot<'_>, ApiError> {
        {
            let mut users = self.users();
            let n = users.entry(user.to_owned()).or_default();
            if *n >= self.uploads_per_user {
                return Err(ApiError::Busy(
                    "this user has too many resume uploads in progress; retry when one is done",
                ));
            }
            *n += 1;
        }
        match tokio::time::timeout(WAIT, self.uploads.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(UploadSlot {
                transfers: self,
                user: user.to_owned(),
                _permit: permit,
            }),
            _ => {
                self.release_user(user);
                Err(ApiError::Busy(
                    "too many resume uploads in progress; retry shortly",
                ))
            }
        }
    }

    /// A permit for one download: 503 after [`WAIT`] if every one is taken.
    pub async fn download(&self) -> Result<OwnedSemaphorePermit, ApiError> {
        tokio::time::timeout(WAIT, self.downloads.clone().acquire_owned())
            .await
            .ok()
            .and_then(Result::ok)
            .ok_or(ApiError::Busy(
                "too many resume downloads in progress; retry shortly",
            ))
    }
}

/// `content` as a response body that holds `permit` until its last piece is handed over (or
/// the body is dropped with its connection).
pub fn body_with_permit(content: Bytes, permit: OwnedSemaphorePermit) -> Body {
    Body::new(Permitted {
        content,
        permit: Some(permit),
    })
}

struct Permitted {
    content: Bytes,
    permit: Option<OwnedSemaphorePermit>,
}

impl http_body::Body for Permitted {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        if self.content.is_empty() {
            self.permit = None;
            return std::task::Poll::Ready(None);
        }
        let n = CHUNK.min(self.content.len());
        let piece = self.content.split_to(n);
        std::task::Poll::Ready(Some(Ok(http_body::Frame::data(piece))))
    }

    fn is_end_stream(&self) -> bool {
        self.content.is_empty()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.content.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn one_user_holds_at_most_its_share_of_upload_slots() {
        let t = Transfers::new(2);
        let a = t.upload("user_a").await.expect("first");
        let b = t.upload("user_a").await.expect("second");
        assert!(matches!(t.upload("user_a").await, Err(ApiError::Busy(_))));
        // Others still get theirs.
        let other = t.upload("user_b").await.expect("another user");
        drop(a);
        let again = t.upload("user_a").await.expect("a slot came back");
        drop((b, other, again));
        assert!(t.users().is_empty(), "nothing left behind");
        assert_eq!(t.uploads.available_permits(), UPLOAD_PERMITS);
    }

    #[tokio::test]
    async fn past_every_upload_permit_an_upload_waits_then_gets_503() {
        let t = Transfers::new(2);
        let users: Vec<String> = (0..UPLOAD_PERMITS).map(|i| format!("user_{i}")).collect();
        let mut held = Vec::new();
        for u in &users {
            held.push(t.upload(u).await.expect("a permit"));
        }
        assert!(matches!(
            t.upload("user_late").await,
            Err(ApiError::Busy(_))
        ));
        assert!(!t.users().contains_key("user_late"), "its slot given back");
        held.pop();
        t.upload("user_late").await.expect("a permit came back");
    }

    #[tokio::test]
    async fn a_download_keeps_its_permit_until_the_body_is_read() {
        let t = Transfers::new(2);
        let content = Bytes::from(vec![7u8; 3 * CHUNK + 5]);
        let body = body_with_permit(content.clone(), t.download().await.expect("permit"));
        assert_eq!(t.downloads.available_permits(), DOWNLOAD_PERMITS - 1);
        let read = body.collect().await.expect("body").to_bytes();
        assert_eq!(read, content);
        assert_eq!(t.downloads.available_permits(), DOWNLOAD_PERMITS);
        let empty = body_with_permit(Bytes::new(), t.download().await.expect("permit"));
        assert!(empty.collect().await.expect("body").to_bytes().is_empty());
        assert_eq!(t.downloads.available_permits(), DOWNLOAD_PERMITS);
    }
}
