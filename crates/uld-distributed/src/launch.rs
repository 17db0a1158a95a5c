//! Starts N ranks of a program on this machine, as `torchrun
//! --nproc-per-node N` would: each gets `RANK`, `LOCAL_RANK`, `WORLD_SIZE`,
//! `LOCAL_WORLD_SIZE`, `MASTER_ADDR` (loopback) and a free `MASTER_PORT`,
//! and, unless the caller set it, an equal share of the CPU cores as
//! `OMP_NUM_THREADS`. When a rank fails, the others get a grace period to
//! stop on their own (their next collective fails) and are then killed.

use std::ffi::OsString;
use std::path::Path;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use uld_core::{Error, Result};

/// How long the other ranks may take to stop after one failed.
const GRACE: Duration = Duration::from_secs(20);
const POLL: Duration = Duration::from_millis(50);

/// Runs `program args` as `nproc` local ranks and waits for all of them.
pub fn run_local(program: &Path, args: &[OsString], nproc: usize) -> Result<()> {
    if nproc == 0 {
        return Err(Error::invalid("--nproc", "must be at least 1"));
    }
    let port = free_port()?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let share = (threads / nproc).max(1).to_string();
    let mut children = Vec::with_capacity(nproc);
    for rank in 0..nproc {
        let mut command = Command::new(program);
        command
            .args(args)
            .env("RANK", rank.to_string())
            .env("LOCAL_RANK", rank.to_string())
            .env("WORLD_SIZE", nproc.to_string())
            .env("LOCAL_WORLD_SIZE", nproc.to_string())
            .env("MASTER_ADDR", "127.0.0.1")
            .env("MASTER_PORT", port.to_string());
        if std::env::var_os("OMP_NUM_THREADS").is_none() {
            command.env("OMP_NUM_THREADS", &share);
        }
        match command.spawn() {
            Ok(child) => children.push(child),
            Err(e) => {
                stop(&mut children);
                return Err(Error::io(program, e));
            }
        }
    }
    wait_all(children)
}

/// A port no process listens on now (the OS's pick for port 0).
pub fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| Error::invalid("--nproc", format!("no free local port: {e}")))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| Error::invalid("--nproc", format!("no free local port: {e}")))
}

fn wait_all(mut children: Vec<Child>) -> Result<()> {
    let world = children.len();
    let mut status: Vec<Option<ExitStatus>> = vec![None; world];
    let mut failed: Option<(usize, ExitStatus, Instant)> = None;
    loop {
        for (rank, child) in children.iter_mut().enumerate() {
            if status[rank].is_none()
                && let Ok(Some(s)) = child.try_wait()
            {
                status[rank] = Some(s);
                if !s.success() && failed.is_none() {
                    failed = Some((rank, s, Instant::now()));
                }
            }
        }
        if status.iter().all(Option::is_some) {
            break;
        }
        if let Some((_, _, at)) = failed
            && at.elapsed() > GRACE
        {
            stop(&mut children);
            break;
        }
        std::thread::sleep(POLL);
    }
    match failed {
        None => Ok(()),
        Some((rank, s, _)) => Err(Error::invalid(
            "distributed training",
            format!(
                "rank {rank} of {world} {}; the other ranks were stopped",
                describe(s)
            ),
        )),
    }
}

fn stop(children: &mut [Child]) {
    for child in children.iter_mut() {
        if matches!(child.try_wait(), Ok(None)) {
            let _ = child.kill();
        }
        let _ = child.wait();
    }
}

fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => format!("was killed by signal {signal}"),
        _ => format!("ended ({status})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Vec<OsString> {
        vec!["-c".into(), script.into()]
    }

    #[test]
    fn every_rank_gets_the_rendezvous_variables() {
        let dir = tempfile::tempdir().unwrap();
        let script = format!(
            "echo $RANK $LOCAL_RANK $WORLD_SIZE $MASTER_ADDR $MASTER_PORT > {}/rank_$RANK",
            dir.path().display()
        );
        run_local(Path::new("/bin/sh"), &sh(&script), 3).unwrap();
        let mut ports = Vec::new();
        for rank in 0..3 {
            let line = std::fs::read_to_string(dir.path().join(format!("rank_{rank}"))).unwrap();
            let f: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(
                &f[..4],
                &[&*rank.to_string(), &*rank.to_string(), "3", "127.0.0.1"]
            );
            ports.push(f[4].parse::<u16>().unwrap());
        }
        assert!(ports.iter().all(|&p| p == ports[0] && p > 0));
    }

    #[test]
    fn a_failed_rank_stops_the_others_and_is_named() {
        let start = Instant::now();
        // Rank 1 fails at once; rank 0 would run for a minute.
        let script = "if [ $RANK = 1 ]; then exit 3; fi; exec sleep 60";
        let err = run_local(Path::new("/bin/sh"), &sh(script), 2).unwrap_err();
        assert!(
            err.to_string().contains("rank 1 of 2 exited with status 3"),
            "{err}"
        );
        assert!(
            start.elapsed() < Duration::from_secs(50),
            "rank 0 was stopped"
        );
    }
}
