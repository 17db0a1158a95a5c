//! SGD with momentum and AdamW over a `VarStore`, with state that can be
//! saved and restored, so a resumed run continues bit for bit.
//!
//! libtorch's optimisers behind `tch::nn::Optimizer` keep their state where
//! tch cannot save it; these follow PyTorch's update rules (`torch.optim.SGD`,
//! `torch.optim.AdamW`) and keep every buffer as a named tensor.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor, nn::VarStore};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum OptimizerConfig {
    Sgd {
        momentum: f64,
        weight_decay: f64,
    },
    AdamW {
        beta1: f64,
        beta2: f64,
        eps: f64,
        weight_decay: f64,
    },
}

impl OptimizerConfig {
    pub fn validate(&self) -> Result<(), String> {
        let unit = |name: &str, v: f64| {
            if (0.0..1.0).contains(&v) {
                Ok(())
            } else {
                Err(format!("{name} must be in [0, 1), got {v}"))
            }
        };
        let non_negative = |name: &str, v: f64| {
            if v >= 0.0 && v.is_finite() {
                Ok(())
            } else {
                Err(format!("{name} must be >= 0, got {v}"))
            }
        };
        match *self {
            Self::Sgd {
                momentum,
                weight_decay,
            } => {
                unit("momentum", momentum)?;
                non_negative("weight_decay", weight_decay)
            }
            Self::AdamW {
                beta1,
                beta2,
                eps,
                weight_decay,
            } => {
                unit("beta1", beta1)?;
                unit("beta2", beta2)?;
                if eps.is_nan() || eps <= 0.0 {
                    return Err(format!("eps must be > 0, got {eps}"));
                }
                non_negative("weight_decay", weight_decay)
            }
        }
    }
}

pub struct Optimizer {
    config: OptimizerConfig,
    /// Trainable parameters by name, in name order.
    params: Vec<(String, Tensor)>,
    /// Per-parameter buffers: SGD `[momentum]`, AdamW `[exp_avg, exp_avg_sq]`.
    state: BTreeMap<String, Vec<Tensor>>,
    steps: u64,
}

const BUFFER_NAMES: [&str; 2] = ["m", "v"];

impl Optimizer {
    pub fn new(config: OptimizerConfig, vs: &VarStore) -> Self {
        let mut params: Vec<(String, Tensor)> = vs
            .variables()
            .into_iter()
            .filter(|(_, t)| t.requires_grad())
            .collect();
        params.sort_by(|a, b| a.0.cmp(&b.0));
        Self {
            config,
            params,
            state: BTreeMap::new(),
            steps: 0,
        }
    }

    /// The parameters it updates, sorted by name.
    pub fn parameters(&self) -> Vec<Tensor> {
        self.params.iter().map(|(_, p)| p.shallow_clone()).collect()
    }

    pub fn steps(&self) -> u64 {
        self.steps
    }

    pub fn zero_grad(&mut self) {
        for (_, p) in &mut self.params {
            let mut g = p.grad();
            if g.defined() {
                let _ = g.detach_().zero_();
            }
        }
    }

    /// Multiplies every gradient by `factor` (undoing a loss scale).
    pub fn scale_grads(&mut self, factor: f64) {
        tch::no_grad(|| {
            for (_, p) in &self.params {
                let mut g = p.grad();
                if g.defined() {
                    let _ = g.g_mul_scalar_(factor);
                }
            }
        });
    }

    /// Scales gradients so their global L2 norm is at most `max_norm`;
    /// returns the norm before scaling (NaN/inf when a gradient is not finite).
    pub fn clip_grad_norm(&mut self, max_norm: f64) -> f64 {
        let grads: Vec<Tensor> = self
            .params
            .iter()
            .map(|(_, p)| p.grad())
            .filter(Tensor::defined)
            .collect();
        if grads.is_empty() {
            return 0.0;
        }
        let total = tch::no_grad(|| {
            let squares: Vec<Tensor> = grads
                .iter()
                .map(|g| g.to_kind(Kind::Float).square().sum(Kind::Float))
                .collect();
            Tensor::stack(&squares, 0)
                .sum(Kind::Float)
                .sqrt()
                .double_value(&[])
        });
        if total.is_finite() && total > max_norm {
            let scale = max_norm / (total + 1e-6);
            tch::no_grad(|| {
                for mut g in grads {
                    let _ = g.g_mul_scalar_(scale);
                }
            });
        }
        total
    }

    /// One update with learning rate `lr`; parameters without a gradient are left alone.
    pub fn step(&mut self, lr: f64) {
        self.steps += 1;
        let t = self.steps as i32;
        tch::no_grad(|| {
            for (name, p) in &mut self.params {
                let grad = p.grad();
                if !grad.defined() {
                    continue;
                }
                match self.config {
                    OptimizerConfig::Sgd {
                        momentum,
                        weight_decay,
                    } => {
                        let g = if weight_decay > 0.0 {
                            &grad + &*p * weight_decay
                        } else {
                            grad
                        };
                        let update = if momentum > 0.0 {
                            let buffers = self
                                .state
                                .entry(name.clone())
                                .or_insert_with(|| vec![g.zeros_like()]);
                            // A zero buffer makes the first update `buf = g`, as PyTorch's.
                            let mut buf = buffers[0].shallow_clone();
                            let _ = buf.g_mul_scalar_(momentum).g_add_(&g);
                            buf
                        } else {
                            g
                        };
                        let _ = p.g_add_(&(update * -lr));
                    }
                    OptimizerConfig::AdamW {
                        beta1,
                        beta2,
                        eps,
                        weight_decay,
                    } => {
                        if weight_decay > 0.0 {
                            let _ = p.g_mul_scalar_(1.0 - lr * weight_decay);
                        }
                        let buffers = self
                            .state
                            .entry(name.clone())
                            .or_insert_with(|| vec![grad.zeros_like(), grad.zeros_like()]);
                        let (mut m, mut v) =
                            (buffers[0].shallow_clone(), buffers[1].shallow_clone());
                        let _ = m.g_mul_scalar_(beta1).g_add_(&(&grad * (1.0 - beta1)));
                        let _ = v
                            .g_mul_scalar_(beta2)
                            .addcmul_(&grad, &(&grad * (1.0 - beta2)));
                        let bias1 = 1.0 - beta1.powi(t);
                        let bias2 = 1.0 - beta2.powi(t);
                        let denom = (&v / bias2).sqrt() + eps;
                        let _ = p.g_add_(&(&m / denom * (-lr / bias1)));
                    }
                }
            }
        });
    }

    /// The optimiser's buffers and step count as named tensors (for checkpoints).
    pub fn state_tensors(&self) -> Vec<(String, Tensor)> {
        let mut named = vec![("steps".to_string(), Tensor::from(self.steps as i64))];
        for (param, buffers) in &self.state {
            for (buffer, name) in buffers.iter().zip(BUFFER_NAMES) {
                named.push((format!("{name}.{param}"), buffer.shallow_clone()));
            }
        }
        named
    }

    /// Restores buffers saved by [`Self::state_tensors`].
    pub fn load_state(&mut self, named: &[(String, Tensor)]) -> Result<(), String> {
        let by_name: BTreeMap<&str, &Tensor> = named.iter().map(|(n, t)| (n.as_str(), t)).collect();
        let steps = by_name
            .get("steps")
            .ok_or("optimiser state has no `steps`")?;
        self.steps = steps.int64_value(&[]) as u64;
        let buffers_per_param = match self.config {
            OptimizerConfig::Sgd { .. } => 1,
            OptimizerConfig::AdamW { .. } => 2,
        };
        self.state.clear();
        for (param, p) in &self.params {
            let found: Vec<Tensor> = BUFFER_NAMES[..buffers_per_param]
                .iter()
                .filter_map(|b| by_name.get(format!("{b}.{param}").as_str()))
                .map(|t| t.to_device(p.device()).to_kind(p.kind()))
                .collect();
            match found.len() {
                0 => {}
                n if n == buffers_per_param => {
                    if found[0].size() != p.size() {
                        return Err(format!(
                            "optimiser buffer of `{param}` has shape {:?}, the parameter {:?}",
                            found[0].size(),
                            p.size()
                        ));
                    }
                    self.state.insert(param.clone(), found);
                }
                _ => return Err(format!("optimiser state of `{param}` is incomplete")),
            }
        }
        Ok(())
    }
}
