//! Batches built on worker threads with prefetch, deterministic for a seed.
//!
//! Every sample draws its randomness from its own generator seeded by
//! `(seed, epoch, index)` ([`sample_rng`]) and the epoch's order comes from
//! `(seed, epoch)` alone, so a batch's content does not depend on which
//! worker built it, on how many workers there are, or on timing. Workers take
//! whole batches (so collation happens off the caller's thread) and the
//! caller receives them in order; at most `prefetch` batches are in flight.

mod deeplesion;

pub use deeplesion::{
    DeepLesionDataset, ImageBatch, KeyImage, NoisyPolicy, Target, TrainBatch, TrainItem, ViewMode,
};

use std::collections::BTreeMap;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use uld_core::{Error, Result};

/// The generator a sample's augmentation draws from.
pub type SampleRng = ChaCha8Rng;

/// A source of training items, shared by the worker threads.
pub trait Dataset: Send + Sync + 'static {
    type Item: Send + 'static;
    type Batch: Send + 'static;
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Item `index`, drawing any randomness from `rng` only.
    fn get(&self, index: usize, rng: &mut SampleRng) -> Result<Self::Item>;
    /// Items (in epoch order) into one batch.
    fn collate(&self, items: Vec<Self::Item>) -> Result<Self::Batch>;
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoaderConfig {
    pub batch_size: usize,
    /// Worker threads; 0 builds batches on the caller's thread.
    pub workers: usize,
    /// Batches built ahead of the one the caller is waiting for.
    pub prefetch: usize,
    pub seed: u64,
    pub shuffle: bool,
    /// Leave out a last batch smaller than `batch_size`.
    pub drop_last: bool,
}

impl Default for LoaderConfig {
    fn default() -> Self {
        Self {
            batch_size: 4,
            workers: 2,
            prefetch: 4,
            seed: 0,
            shuffle: true,
            drop_last: false,
        }
    }
}

/// SplitMix64's finaliser: a bijective mix of 64 bits.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The generator of item `index` in `epoch`.
pub fn sample_rng(seed: u64, epoch: u64, index: usize) -> SampleRng {
    SampleRng::seed_from_u64(mix(mix(mix(seed) ^ epoch) ^ index as u64))
}

/// The order of `len` items in `epoch`: a seeded shuffle, or `0..len`.
pub fn epoch_order(len: usize, seed: u64, epoch: u64, shuffle: bool) -> Vec<usize> {
    let mut order: Vec<usize> = (0..len).collect();
    if shuffle {
        let mut rng = SampleRng::seed_from_u64(mix(mix(seed) ^ epoch) ^ 0x5EED_0F0D_E12E_u64);
        order.shuffle(&mut rng);
    }
    order
}

pub struct Loader<D: Dataset> {
    dataset: Arc<D>,
    config: LoaderConfig,
    shard: Shard,
}

/// The part of every batch one of several data-parallel ranks takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Shard {
    rank: usize,
    world: usize,
}

impl<D: Dataset> Loader<D> {
    pub fn new(dataset: Arc<D>, config: LoaderConfig) -> Result<Self> {
        if config.batch_size == 0 {
            return Err(Error::invalid("batch_size", "must be at least 1"));
        }
        Ok(Self {
            dataset,
            config,
            shard: Shard { rank: 0, world: 1 },
        })
    }

    /// Rank `rank` of `world` data-parallel ranks: the epoch's order is cut
    /// into global batches of `world x batch_size` items and this rank takes
    /// the `rank`-th slice of each, so the ranks together see what one
    /// loader with `world` times the batch size would. A last global batch
    /// with fewer items is left out, whatever `drop_last` says, so that every
    /// rank takes the same number of steps.
    pub fn with_shard(mut self, rank: usize, world: usize) -> Result<Self> {
        if world == 0 || rank >= world {
            return Err(Error::invalid(
                "loader shard",
                format!("rank {rank} must lie below the number of ranks {world}"),
            ));
        }
        self.shard = Shard { rank, world };
        Ok(self)
    }

    pub fn dataset(&self) -> &Arc<D> {
        &self.dataset
    }

    pub fn config(&self) -> &LoaderConfig {
        &self.config
    }

    /// The item indices of each of this rank's batches of `epoch`.
    pub fn batches(&self, epoch: u64) -> Vec<Vec<usize>> {
        let c = &self.config;
        let Shard { rank, world } = self.shard;
        let order = epoch_order(self.dataset.len(), c.seed, epoch, c.shuffle);
        let global = c.batch_size * world;
        let whole_only = c.drop_last || world > 1;
        order
            .chunks(global)
            .filter(|b| !whole_only || b.len() == global)
            .map(|b| {
                b[(rank * c.batch_size).min(b.len())..((rank + 1) * c.batch_size).min(b.len())]
                    .to_vec()
            })
            .collect()
    }

    /// The batches of `epoch`, in order.
    pub fn epoch(&self, epoch: u64) -> Epoch<D> {
        self.epoch_from(epoch, 0)
    }

    /// The batches of `epoch` from batch `first` on (a resumed run), without
    /// building the ones before it; each is the same as in a whole epoch.
    pub fn epoch_from(&self, epoch: u64, first: usize) -> Epoch<D> {
        let mut plan = self.batches(epoch);
        plan.drain(..first.min(plan.len()));
        let plan = Arc::new(plan);
        let total = plan.len();
        let job = BatchJob {
            dataset: self.dataset.clone(),
            plan,
            seed: self.config.seed,
            epoch,
        };
        if self.config.workers == 0 {
            return Epoch {
                next: 0,
                total,
                inner: EpochInner::Inline(job),
            };
        }
        let (ticket_tx, ticket_rx) = mpsc::channel::<usize>();
        let ticket_rx = Arc::new(Mutex::new(ticket_rx));
        let (result_tx, result_rx) = mpsc::channel();
        let workers = (0..self.config.workers)
            .map(|_| {
                let job = job.clone();
                let tickets = ticket_rx.clone();
                let results: Sender<(usize, Result<D::Batch>)> = result_tx.clone();
                std::thread::spawn(move || {
                    loop {
                        // The lock is held only while taking a ticket.
                        let ticket = tickets.lock().map(|rx| rx.recv());
                        let Ok(Ok(b)) = ticket else { return };
                        if results.send((b, job.build(b))).is_err() {
                            return;
                        }
                    }
                })
            })
            .collect();
        let issued = total.min(self.config.prefetch.max(1) + self.config.workers);
        for b in 0..issued {
            let _ = ticket_tx.send(b);
        }
        Epoch {
            next: 0,
            total,
            inner: EpochInner::Threads {
                tickets: Some(ticket_tx),
                issued,
                results: result_rx,
                ready: BTreeMap::new(),
                workers,
            },
        }
    }
}

struct BatchJob<D: Dataset> {
    dataset: Arc<D>,
    plan: Arc<Vec<Vec<usize>>>,
    seed: u64,
    epoch: u64,
}

impl<D: Dataset> Clone for BatchJob<D> {
    fn clone(&self) -> Self {
        Self {
            dataset: self.dataset.clone(),
            plan: self.plan.clone(),
            seed: self.seed,
            epoch: self.epoch,
        }
    }
}

impl<D: Dataset> BatchJob<D> {
    /// Batch `b`; a panic while building it becomes its error (so a worker
    /// never dies silently and leaves the caller waiting).
    fn build(&self, b: usize) -> Result<D::Batch> {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.build_unguarded(b)))
            .unwrap_or_else(|_| {
                Err(Error::invalid(
                    "loader",
                    format!("building batch {b} panicked"),
                ))
            })
    }

    fn build_unguarded(&self, b: usize) -> Result<D::Batch> {
        let items = self.plan[b]
            .iter()
            .map(|&i| {
                let mut rng = sample_rng(self.seed, self.epoch, i);
                self.dataset.get(i, &mut rng)
            })
            .collect::<Result<Vec<_>>>()?;
        self.dataset.collate(items)
    }
}

enum EpochInner<D: Dataset> {
    Inline(BatchJob<D>),
    Threads {
        tickets: Option<Sender<usize>>,
        issued: usize,
        results: Receiver<(usize, Result<D::Batch>)>,
        ready: BTreeMap<usize, Result<D::Batch>>,
        workers: Vec<JoinHandle<()>>,
    },
}

/// The batches of one epoch; dropping it stops the workers.
pub struct Epoch<D: Dataset> {
    next: usize,
    total: usize,
    inner: EpochInner<D>,
}

impl<D: Dataset> Epoch<D> {
    /// Batches in this epoch.
    pub fn total(&self) -> usize {
        self.total
    }
}

impl<D: Dataset> Iterator for Epoch<D> {
    type Item = Result<D::Batch>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.total {
            return None;
        }
        let b = self.next;
        self.next += 1;
        match &mut self.inner {
            EpochInner::Inline(job) => Some(job.build(b)),
            EpochInner::Threads {
                tickets,
                issued,
                results,
                ready,
                ..
            } => {
                let batch = loop {
                    if let Some(batch) = ready.remove(&b) {
                        break batch;
                    }
                    match results.recv() {
                        Ok((i, batch)) => {
                            ready.insert(i, batch);
                        }
                        Err(_) => {
                            break Err(Error::invalid(
                                "loader",
                                "a worker thread stopped (panicked) before building its batch",
                            ));
                        }
                    }
                };
                if *issued < self.total {
                    if let Some(tx) = tickets {
                        let _ = tx.send(*issued);
                    }
                    *issued += 1;
                }
                Some(batch)
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.total - self.next;
        (left, Some(left))
    }
}

impl<D: Dataset> Drop for Epoch<D> {
    fn drop(&mut self) {
        if let EpochInner::Threads {
            tickets, workers, ..
        } = &mut self.inner
        {
            // Closing the ticket channel ends each worker after its current batch.
            tickets.take();
            for w in workers.drain(..) {
                let _ = w.join();
            }
        }
    }
}
