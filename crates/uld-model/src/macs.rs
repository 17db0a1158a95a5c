//! The network's multiply-adds, counted from its convolutions as a forward
//! pass runs them: each [`Conv`] adds `N x H_out x W_out x numel(weight)`
//! (every output position of every output channel costs `C_in / groups x
//! k x k` multiply-adds) while [`count_macs`] runs. Norms, activations,
//! pooling and upsampling are not counted: with 3x3 convolutions over tens
//! to hundreds of channels they are well under 1% of the work.

use std::cell::Cell;

use tch::{Tensor, nn};

thread_local! {
    static COUNTED: Cell<Option<u64>> = const { Cell::new(None) };
}

/// A 2D convolution that counts its multiply-adds while [`count_macs`] runs.
#[derive(Debug)]
pub struct Conv(nn::Conv2D);

/// `nn::conv2d`, counted.
pub fn conv2d(p: nn::Path, c_in: i64, c_out: i64, k: i64, cfg: nn::ConvConfig) -> Conv {
    Conv(nn::conv2d(p, c_in, c_out, k, cfg))
}

impl nn::Module for Conv {
    fn forward(&self, xs: &Tensor) -> Tensor {
        let ys = xs.apply(&self.0);
        COUNTED.with(|c| {
            if let Some(total) = c.get() {
                let s = ys.size();
                let positions = (s[0] * s[2] * s[3]) as u64;
                c.set(Some(total + positions * self.0.ws.numel() as u64));
            }
        });
        ys
    }
}

/// The multiply-adds of the convolutions `f` runs on this thread.
pub fn count_macs(f: impl FnOnce()) -> u64 {
    COUNTED.with(|c| c.set(Some(0)));
    f();
    COUNTED.with(|c| c.take()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::nn::Module;

    #[test]
    fn a_convolution_counts_its_output_positions_times_its_weights() {
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let cfg = nn::ConvConfig {
            stride: 2,
            padding: 1,
            groups: 2,
            ..Default::default()
        };
        let conv = conv2d(vs.root(), 4, 6, 3, cfg);
        let x = Tensor::zeros([3, 4, 10, 8], (tch::Kind::Float, tch::Device::Cpu));
        // Output 3 x 6 x 5 x 4; each output value: 4 / 2 groups x 3 x 3 = 18 MACs.
        let macs = count_macs(|| {
            let _ = conv.forward(&x);
        });
        assert_eq!(macs, 3 * 6 * 5 * 4 * 18);
        assert_eq!(count_macs(|| {}), 0, "the count starts again");
        let _ = conv.forward(&x);
        assert_eq!(count_macs(|| {}), 0, "nothing is counted outside");
    }
}
