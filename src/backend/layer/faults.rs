//! Tests only (feature `testing`): failing a fraction of requests with a transient error
//! before they are sent, as when a connection drops, to prove every verb survives a flaky
//! store (`REPO_TEST_FAULT_RATIO`). Under [`super::retry::Retry`], they are retried.

use super::{Layer, Request};
use crate::error::{Error, Result};

/// Fails each request with probability `ratio`.
pub struct Faults {
    ratio: f64,
}

impl Faults {
    /// Fails a `ratio` (0 ≤ ratio < 1) of requests.
    pub fn new(ratio: f64) -> Self {
        Self { ratio }
    }
}

impl Layer for Faults {
    fn request<T>(&self, _req: &Request<'_>, call: &mut dyn FnMut() -> Result<T>) -> Result<T> {
        if rand::random::<f64>() < self.ratio {
            return Err(Error::storage(
                "injected fault (REPO_TEST_FAULT_RATIO)",
                true,
            ));
        }
        call()
    }
}
