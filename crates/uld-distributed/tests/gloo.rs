//! Two ranks (threads of this test, each with its own TCPStore client and
//! Gloo group) over 127.0.0.1.

use std::time::Duration;

use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};
use uld_distributed::{ProcessGroup, Rendezvous};

/// Runs `f(group)` on `world` ranks at once and returns their results.
fn on_ranks<T: Send>(world: usize, f: impl Fn(ProcessGroup) -> T + Sync) -> Vec<T> {
    let port = uld_distributed::launch::free_port().unwrap();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..world)
            .map(|rank| {
                let f = &f;
                s.spawn(move || {
                    let r = Rendezvous {
                        rank,
                        world,
                        local_rank: rank,
                        master_addr: "127.0.0.1".into(),
                        master_port: port,
                    };
                    f(ProcessGroup::join(&r, Duration::from_secs(30)).unwrap())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

#[test]
fn ranks_sum_broadcast_and_average_gradients() {
    let results = on_ranks(2, |group| {
        let rank = group.rank() as f64;
        let mut values = [rank + 1.0, 10.0 * rank];
        group.sum_values(&mut values).unwrap();

        // Different starting weights; after the broadcast, rank 0's.
        let store = VarStore::new(Device::Cpu);
        let w = store
            .root()
            .var("w", &[3, 2], tch::nn::Init::Const(rank + 1.0));
        let b = store.root().var("b", &[2], tch::nn::Init::Const(-rank));
        group.broadcast_variables(&store).unwrap();
        let weights: Vec<f64> = Vec::<f64>::try_from(w.flatten(0, -1).to_kind(Kind::Double))
            .unwrap()
            .into_iter()
            .chain(Vec::<f64>::try_from(b.to_kind(Kind::Double)).unwrap())
            .collect();

        // Each rank's loss differs; the averaged gradient is their mean.
        let loss = (&w * (rank + 1.0)).sum(Kind::Float) + b.sum(Kind::Float) * (2.0 * rank);
        loss.backward();
        group
            .average_gradients(&[w.shallow_clone(), b.shallow_clone()])
            .unwrap();
        let grad_w = Vec::<f64>::try_from(w.grad().flatten(0, -1).to_kind(Kind::Double)).unwrap();
        let grad_b = Vec::<f64>::try_from(b.grad().to_kind(Kind::Double)).unwrap();
        group.barrier().unwrap();
        (values, weights, grad_w, grad_b)
    });
    for (values, weights, grad_w, grad_b) in &results {
        assert_eq!(values, &[3.0, 10.0]);
        assert_eq!(weights, &[1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0]);
        assert_eq!(grad_w, &vec![1.5; 6], "mean of 1 and 2");
        assert_eq!(grad_b, &vec![1.0; 2], "mean of 0 and 2");
    }
}

#[test]
fn a_collective_whose_peer_is_gone_fails_with_a_message() {
    let results = on_ranks(2, |group| {
        let t = Tensor::ones([4], (Kind::Float, Device::Cpu));
        group.all_reduce_sum(&t).unwrap();
        if group.rank() == 1 {
            drop(group);
            return None;
        }
        std::thread::sleep(Duration::from_millis(500));
        Some(group.all_reduce_sum(&t).unwrap_err().to_string())
    });
    let message = results[0].as_ref().unwrap();
    assert!(
        message.contains("rank 0 of 2: summing over the ranks failed"),
        "{message}"
    );
}
