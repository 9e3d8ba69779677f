//! Keeping transfers to a byte rate (`--limit-upload`, `--limit-download`): each transfer
//! books its bytes on a shared timeline and waits until the timeline has caught up, so
//! concurrent transfers share the cap.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{Layer, Request};
use crate::error::Result;

/// A shared timeline at a byte rate.
struct Timeline {
    bytes_per_sec: f64,
    next: Mutex<Instant>,
}

impl Timeline {
    fn new(bytes_per_sec: u64) -> Self {
        Self {
            bytes_per_sec: bytes_per_sec.max(1) as f64,
            next: Mutex::new(Instant::now()),
        }
    }

    fn book(&self, bytes: usize) {
        let due = {
            let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
            let start = (*next).max(Instant::now());
            *next = start + Duration::from_secs_f64(bytes as f64 / self.bytes_per_sec);
            *next
        };
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
    }
}

/// Upload and download caps, in bytes per second (`None`: no cap).
pub struct Pace {
    up: Option<Timeline>,
    down: Option<Timeline>,
}

impl Pace {
    /// Caps uploads at `up` and downloads at `down` bytes per second.
    pub fn new(up: Option<u64>, down: Option<u64>) -> Self {
        Self {
            up: up.map(Timeline::new),
            down: down.map(Timeline::new),
        }
    }
}

impl Layer for Pace {
    fn request<T>(&self, req: &Request<'_>, call: &mut dyn FnMut() -> Result<T>) -> Result<T> {
        if let (Request::Put { len, .. }, Some(up)) = (req, &self.up) {
            up.book(*len);
        }
        call()
    }

    fn read(
        &self,
        _req: &Request<'_>,
        call: &mut dyn FnMut() -> Result<Vec<u8>>,
    ) -> Result<Vec<u8>> {
        let bytes = call()?;
        if let Some(down) = &self.down {
            down.book(bytes.len());
        }
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::backend::layer::Layered;
    use crate::backend::memory::MemoryBackend;
    use crate::backend::Backend;

    #[test]
    fn transfers_keep_to_the_rate() {
        let b = Layered::new(
            Arc::new(MemoryBackend::new()),
            Pace::new(Some(100_000), Some(100_000)),
        );
        let start = Instant::now();
        // The first booking starts the timeline; the next ones wait for it.
        for i in 0..3 {
            b.put(&format!("o{i}"), &[0; 10_000]).unwrap();
        }
        assert!(
            start.elapsed() >= Duration::from_millis(200),
            "{:?}",
            start.elapsed()
        );
        let start = Instant::now();
        for i in 0..3 {
            b.get(&format!("o{i}")).unwrap();
        }
        assert!(
            start.elapsed() >= Duration::from_millis(200),
            "{:?}",
            start.elapsed()
        );
    }
}
