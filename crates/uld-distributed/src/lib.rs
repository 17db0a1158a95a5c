//! Data-parallel training on torch.distributed's c10d, which libtorch
//! ships: a TCPStore rendezvous and a Gloo process group (CPU and CUDA
//! tensors), reached through a small C++ shim (`csrc/c10d.cpp`) that lets
//! no C++ exception cross into Rust. Processes find each other through the
//! variables `torchrun` sets ([`Rendezvous`]); [`launch`] starts N local
//! ones.

pub mod launch;

use std::ffi::{CString, c_char, c_int, c_longlong, c_void};
use std::ptr::NonNull;
use std::time::Duration;

use tch::Tensor;
use tch::nn::VarStore;
use uld_core::{Error, Result};

unsafe extern "C" {
    fn uld_c10d_init(
        host: *const c_char,
        port: c_int,
        rank: c_int,
        world: c_int,
        timeout_ms: c_longlong,
        interface: *const c_char,
        address: *const c_char,
        err: *mut c_char,
        err_len: usize,
    ) -> *mut c_void;
    fn uld_c10d_free(group: *mut c_void);
    fn uld_c10d_all_reduce_sum(
        group: *mut c_void,
        tensor: *mut c_void,
        err: *mut c_char,
        err_len: usize,
    ) -> c_int;
    fn uld_c10d_broadcast(
        group: *mut c_void,
        tensor: *mut c_void,
        root: c_int,
        err: *mut c_char,
        err_len: usize,
    ) -> c_int;
    fn uld_c10d_barrier(group: *mut c_void, err: *mut c_char, err_len: usize) -> c_int;
}

/// Where a process stands in a group and how it reaches rank 0: `RANK`,
/// `WORLD_SIZE`, `LOCAL_RANK`, `MASTER_ADDR`, `MASTER_PORT`, as `torchrun`
/// (or [`launch`]) sets them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendezvous {
    pub rank: usize,
    pub world: usize,
    /// Rank on this machine (the GPU a rank uses); `RANK` when unset.
    pub local_rank: usize,
    pub master_addr: String,
    pub master_port: u16,
}

impl Rendezvous {
    /// From the process environment; `None` when `WORLD_SIZE` is unset.
    pub fn from_env() -> Result<Option<Self>> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// From the variables `var` looks up; `None` when `WORLD_SIZE` is unset.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Option<Self>> {
        let Some(world) = var("WORLD_SIZE") else {
            return Ok(None);
        };
        let number = |name: &str, value: &str| {
            value.trim().parse::<usize>().map_err(|_| {
                Error::invalid(
                    "distributed training",
                    format!("{name}={value:?} is not a whole number"),
                )
            })
        };
        let required = |name: &str| {
            var(name).ok_or_else(|| {
                Error::invalid(
                    "distributed training",
                    format!("WORLD_SIZE is set but {name} is not"),
                )
            })
        };
        let world = number("WORLD_SIZE", &world)?;
        let rank = number("RANK", &required("RANK")?)?;
        let local_rank = match var("LOCAL_RANK") {
            Some(v) => number("LOCAL_RANK", &v)?,
            None => rank,
        };
        let port = required("MASTER_PORT")?;
        let master_port = port.trim().parse::<u16>().map_err(|_| {
            Error::invalid(
                "distributed training",
                format!("MASTER_PORT={port:?} is not a port number"),
            )
        })?;
        if world == 0 || rank >= world {
            return Err(Error::invalid(
                "distributed training",
                format!("RANK={rank} must lie below WORLD_SIZE={world}"),
            ));
        }
        Ok(Some(Self {
            rank,
            world,
            local_rank,
            master_addr: required("MASTER_ADDR")?,
            master_port,
        }))
    }

    fn is_loopback(&self) -> bool {
        let host = self.master_addr.trim();
        host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
}

const ERR_LEN: usize = 1024;

/// Gradients are summed in buckets of this many fp32 elements (100 MB).
const BUCKET_ELEMENTS: i64 = 25 << 20;

/// A joined c10d process group (Gloo). Collectives block until every rank
/// has called them, in the same order; one whose peer died fails with
/// Gloo's message instead of hanging.
pub struct ProcessGroup {
    group: NonNull<c_void>,
    rank: usize,
    world: usize,
}

// c10d backends may be used from any thread; uld uses each from one at a time.
unsafe impl Send for ProcessGroup {}

impl ProcessGroup {
    /// Joins the group of `rendezvous`, waiting up to `timeout` for the
    /// others; collectives also fail after `timeout` without progress.
    /// Gloo binds to `GLOO_SOCKET_IFNAME` when set, to loopback when rank 0
    /// is on loopback, else to the address of this machine's hostname.
    pub fn join(rendezvous: &Rendezvous, timeout: Duration) -> Result<Self> {
        let text = |what: &str, s: &str| {
            CString::new(s).map_err(|_| {
                Error::invalid("distributed training", format!("{what} holds a NUL byte"))
            })
        };
        let host = text("MASTER_ADDR", &rendezvous.master_addr)?;
        let interface = text(
            "GLOO_SOCKET_IFNAME",
            &std::env::var("GLOO_SOCKET_IFNAME").unwrap_or_default(),
        )?;
        let address = text(
            "address",
            if rendezvous.is_loopback() {
                "127.0.0.1"
            } else {
                ""
            },
        )?;
        let mut err = [0 as c_char; ERR_LEN];
        let group = unsafe {
            uld_c10d_init(
                host.as_ptr(),
                rendezvous.master_port as c_int,
                rendezvous.rank as c_int,
                rendezvous.world as c_int,
                timeout.as_millis().min(i64::MAX as u128) as c_longlong,
                interface.as_ptr(),
                address.as_ptr(),
                err.as_mut_ptr(),
                ERR_LEN,
            )
        };
        match NonNull::new(group) {
            Some(group) => Ok(Self {
                group,
                rank: rendezvous.rank,
                world: rendezvous.world,
            }),
            None => Err(failure(
                &format!(
                    "rank {} of {} could not join the group at {}:{}",
                    rendezvous.rank,
                    rendezvous.world,
                    rendezvous.master_addr,
                    rendezvous.master_port
                ),
                &err,
            )),
        }
    }

    pub fn rank(&self) -> usize {
        self.rank
    }

    pub fn world(&self) -> usize {
        self.world
    }

    /// Rank 0, which alone writes a run's files.
    pub fn is_leader(&self) -> bool {
        self.rank == 0
    }

    /// Sums a contiguous tensor over the group, in place.
    pub fn all_reduce_sum(&self, tensor: &Tensor) -> Result<()> {
        let mut err = [0 as c_char; ERR_LEN];
        let status = unsafe {
            uld_c10d_all_reduce_sum(
                self.group.as_ptr(),
                tensor.as_ptr() as *mut c_void,
                err.as_mut_ptr(),
                ERR_LEN,
            )
        };
        self.check(status, "summing over the ranks", &err)
    }

    /// Overwrites a contiguous tensor with rank `root`'s.
    pub fn broadcast(&self, tensor: &Tensor, root: usize) -> Result<()> {
        let mut err = [0 as c_char; ERR_LEN];
        let status = unsafe {
            uld_c10d_broadcast(
                self.group.as_ptr(),
                tensor.as_ptr() as *mut c_void,
                root as c_int,
                err.as_mut_ptr(),
                ERR_LEN,
            )
        };
        self.check(status, "broadcasting", &err)
    }

    /// Returns once every rank has called it.
    pub fn barrier(&self) -> Result<()> {
        let mut err = [0 as c_char; ERR_LEN];
        let status = unsafe { uld_c10d_barrier(self.group.as_ptr(), err.as_mut_ptr(), ERR_LEN) };
        self.check(status, "waiting for the other ranks", &err)
    }

    /// Sums `values` over the group (in f64, on the CPU).
    pub fn sum_values(&self, values: &mut [f64]) -> Result<()> {
        let tensor = Tensor::from_slice(values);
        self.all_reduce_sum(&tensor)?;
        tensor.copy_data(values, values.len());
        Ok(())
    }

    /// Replaces every variable of `store` with rank 0's (by sorted name).
    pub fn broadcast_variables(&self, store: &VarStore) -> Result<()> {
        let mut named: Vec<(String, Tensor)> = store.variables().into_iter().collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        let tensors: Vec<Tensor> = named.into_iter().map(|(_, t)| t).collect();
        tch::no_grad(|| {
            for_buckets(&tensors, |flat, bucket| {
                self.broadcast(flat, 0)?;
                unflatten(flat, bucket);
                Ok(())
            })
        })
    }

    /// Averages the gradients of `params` over the group, in buckets of
    /// about 100 MB; every rank passes the same parameters in the same
    /// order, each with a gradient.
    pub fn average_gradients(&self, params: &[Tensor]) -> Result<()> {
        let grads: Vec<Tensor> = params.iter().map(Tensor::grad).collect();
        if let Some(i) = grads.iter().position(|g| !g.defined()) {
            return Err(Error::invalid(
                "distributed training",
                format!("parameter {i} has no gradient to average"),
            ));
        }
        let world = self.world as f64;
        tch::no_grad(|| {
            for_buckets(&grads, |flat, bucket| {
                self.all_reduce_sum(flat)?;
                unflatten(&(flat / world), bucket);
                Ok(())
            })
        })
    }

    fn check(&self, status: c_int, doing: &str, err: &[c_char]) -> Result<()> {
        match status {
            0 => Ok(()),
            _ => Err(failure(
                &format!("rank {} of {}: {doing} failed", self.rank, self.world),
                err,
            )),
        }
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        unsafe { uld_c10d_free(self.group.as_ptr()) }
    }
}

fn failure(context: &str, err: &[c_char]) -> Error {
    let bytes: Vec<u8> = err
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    let cause = String::from_utf8_lossy(&bytes);
    let cause = cause.lines().next().unwrap_or("").trim();
    Error::invalid(
        "distributed training",
        format!("{context} (a rank stopped or could not be reached): {cause}"),
    )
}

/// Calls `f` with each bucket of `tensors` (all of one kind and device)
/// flattened into one contiguous tensor, and the bucket's tensors.
fn for_buckets(
    tensors: &[Tensor],
    mut f: impl FnMut(&Tensor, &[Tensor]) -> Result<()>,
) -> Result<()> {
    let mut start = 0;
    while start < tensors.len() {
        let mut end = start;
        let mut elements = 0;
        while end < tensors.len()
            && (end == start || elements + tensors[end].numel() as i64 <= BUCKET_ELEMENTS)
        {
            elements += tensors[end].numel() as i64;
            end += 1;
        }
        let bucket = &tensors[start..end];
        let views: Vec<Tensor> = bucket.iter().map(|t| t.reshape([-1])).collect();
        let flat = Tensor::cat(&views, 0);
        f(&flat, bucket)?;
        start = end;
    }
    Ok(())
}

/// Copies `flat` back into the tensors it was made of.
fn unflatten(flat: &Tensor, bucket: &[Tensor]) {
    let mut offset = 0;
    for t in bucket {
        let n = t.numel() as i64;
        let mut target = t.shallow_clone();
        target.copy_(&flat.narrow(0, offset, n).view_as(t));
        offset += n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn the_rendezvous_comes_from_torchruns_variables() {
        assert_eq!(Rendezvous::from_vars(vars(&[])).unwrap(), None);
        let r = Rendezvous::from_vars(vars(&[
            ("WORLD_SIZE", "4"),
            ("RANK", "3"),
            ("LOCAL_RANK", "1"),
            ("MASTER_ADDR", "node0"),
            ("MASTER_PORT", "29500"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(
            (r.rank, r.world, r.local_rank, r.master_port),
            (3, 4, 1, 29500)
        );
        assert_eq!(r.master_addr, "node0");
        let err =
            |pairs: &[(&str, &str)]| Rendezvous::from_vars(vars(pairs)).unwrap_err().to_string();
        assert!(err(&[("WORLD_SIZE", "2")]).contains("RANK is not"));
        assert!(
            err(&[
                ("WORLD_SIZE", "2"),
                ("RANK", "2"),
                ("MASTER_ADDR", "h"),
                ("MASTER_PORT", "1")
            ])
            .contains("RANK=2 must lie below WORLD_SIZE=2")
        );
        assert!(
            err(&[
                ("WORLD_SIZE", "2"),
                ("RANK", "0"),
                ("MASTER_ADDR", "h"),
                ("MASTER_PORT", "x")
            ])
            .contains("MASTER_PORT=\"x\"")
        );
    }
}
