//! Retrying requests that failed with a transient storage error (the service was
//! unreachable, overloaded or timed out), with exponential backoff and jitter. Every
//! request of ours is safe to repeat: puts write whole immutable objects (or a fresh
//! temporary name), deletes of missing objects succeed.

use std::time::Duration;

use super::{Layer, Request};
use crate::error::{Error, Result};

/// Up to `retries` more attempts, 100 ms doubling to 10 s apart (plus up to 255 ms jitter).
pub struct Retry {
    retries: usize,
    first_delay: Duration,
}

impl Retry {
    /// Retries a failed request up to `retries` times.
    pub fn new(retries: usize) -> Self {
        Self {
            retries,
            first_delay: Duration::from_millis(100),
        }
    }

    /// Starts the backoff at `delay` instead of 100 ms (tests).
    pub fn first_delay(mut self, delay: Duration) -> Self {
        self.first_delay = delay;
        self
    }
}

impl Layer for Retry {
    fn request<T>(&self, _req: &Request<'_>, call: &mut dyn FnMut() -> Result<T>) -> Result<T> {
        let mut delay = self.first_delay;
        let mut attempt = 0;
        loop {
            match call() {
                Err(Error::Storage {
                    transient: true, ..
                }) if attempt < self.retries => {
                    attempt += 1;
                    let jitter = Duration::from_millis(u64::from(rand::random::<u8>()));
                    std::thread::sleep(delay + jitter.min(delay));
                    delay = (delay * 2).min(Duration::from_secs(10));
                }
                other => return other,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use super::*;
    use crate::backend::layer::Layered;
    use crate::backend::memory::MemoryBackend;
    use crate::backend::Backend;

    /// Fails the first `n` requests with a transient error, or a permanent one.
    struct Flaky {
        left: AtomicUsize,
        transient: bool,
    }

    impl Layer for Flaky {
        fn request<T>(&self, _: &Request<'_>, call: &mut dyn FnMut() -> Result<T>) -> Result<T> {
            if self.left.load(Ordering::SeqCst) > 0 {
                self.left.fetch_sub(1, Ordering::SeqCst);
                return Err(Error::storage("flaky", self.transient));
            }
            call()
        }
    }

    fn stack(n: usize, transient: bool, retries: usize) -> Layered<Retry> {
        let flaky = Layered::new(
            Arc::new(MemoryBackend::new()),
            Flaky {
                left: AtomicUsize::new(n),
                transient,
            },
        );
        Layered::new(
            Arc::new(flaky),
            Retry::new(retries).first_delay(Duration::from_millis(1)),
        )
    }

    #[test]
    fn transient_failures_are_retried_until_the_budget_is_spent() {
        let b = stack(3, true, 3);
        b.put("a", b"x").unwrap();
        assert_eq!(b.get("a").unwrap(), b"x");
        let b = stack(4, true, 3);
        assert!(matches!(
            b.put("a", b"x"),
            Err(Error::Storage {
                transient: true,
                ..
            })
        ));
    }

    #[test]
    fn permanent_failures_and_missing_objects_are_not_retried() {
        let b = stack(1, false, 5);
        assert!(b.put("a", b"x").is_err());
        b.put("a", b"x").unwrap();
        assert!(matches!(b.get("nope"), Err(Error::Missing(_))));
    }
}
