//! An in-memory cache of decoded slices, shared by the loader's workers.
//!
//! Decoding a 512x512 16-bit PNG costs milliseconds; neighbouring key slices
//! of a series share most of their context slices and every epoch reads the
//! same files again, so decoded slices are kept up to a byte budget. When the
//! budget is exceeded the oldest entries go first (FIFO: cheap, and with
//! epoch-wise shuffling no smarter policy wins much).

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use uld_core::Result;

use crate::deeplesion::HuSlice;

#[derive(Debug, Default)]
struct Entries {
    map: HashMap<PathBuf, Arc<HuSlice>>,
    order: VecDeque<PathBuf>,
    bytes: usize,
    hits: u64,
    misses: u64,
}

/// Decoded slices keyed by file path, at most `budget_bytes` of pixel data.
#[derive(Debug)]
pub struct SliceCache {
    budget_bytes: usize,
    entries: Mutex<Entries>,
}

impl SliceCache {
    pub fn new(budget_bytes: usize) -> Self {
        Self {
            budget_bytes,
            entries: Mutex::new(Entries::default()),
        }
    }

    /// The slice at `path`, decoded by `load` on a miss. Two threads missing
    /// the same file may both decode it; the result is the same either way.
    pub fn get_or_load(
        &self,
        path: &Path,
        load: impl FnOnce() -> Result<HuSlice>,
    ) -> Result<Arc<HuSlice>> {
        {
            let mut e = self.lock();
            if let Some(hit) = e.map.get(path).cloned() {
                e.hits += 1;
                return Ok(hit);
            }
        }
        let slice = Arc::new(load()?);
        let bytes = slice.hu.len() * 2;
        let mut e = self.lock();
        e.misses += 1;
        if bytes <= self.budget_bytes && !e.map.contains_key(path) {
            while e.bytes + bytes > self.budget_bytes {
                let Some(old) = e.order.pop_front() else {
                    break;
                };
                if let Some(s) = e.map.remove(&old) {
                    e.bytes -= s.hu.len() * 2;
                }
            }
            e.map.insert(path.to_path_buf(), slice.clone());
            e.order.push_back(path.to_path_buf());
            e.bytes += bytes;
        }
        Ok(slice)
    }

    /// `(hits, misses)` so far.
    pub fn stats(&self) -> (u64, u64) {
        let e = self.lock();
        (e.hits, e.misses)
    }

    /// Bytes of pixel data held.
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        // A panic while holding the lock leaves the map consistent (every
        // mutation is a complete insert or remove), so poisoning is ignored.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}
