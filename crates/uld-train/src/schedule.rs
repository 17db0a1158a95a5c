//! Learning-rate schedules: a linear warm-up, then constant, step or cosine decay.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Decay {
    Constant,
    /// Multiply by `gamma` at each milestone step.
    Step {
        milestones: Vec<u64>,
        gamma: f64,
    },
    /// Half a cosine from the base rate down to `base * min_factor` at `total_steps`.
    Cosine {
        total_steps: u64,
        min_factor: f64,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LrSchedule {
    pub base_lr: f64,
    /// Steps of linear warm-up from `base_lr * warmup_factor` to `base_lr`.
    pub warmup_steps: u64,
    pub warmup_factor: f64,
    pub decay: Decay,
}

impl LrSchedule {
    /// The rate for 0-based `step`.
    pub fn lr_at(&self, step: u64) -> f64 {
        let decayed = match &self.decay {
            Decay::Constant => self.base_lr,
            Decay::Step { milestones, gamma } => {
                let passed = milestones.iter().filter(|&&m| step >= m).count();
                self.base_lr * gamma.powi(passed as i32)
            }
            Decay::Cosine {
                total_steps,
                min_factor,
            } => {
                let t = (step as f64 / (*total_steps).max(1) as f64).min(1.0);
                let factor = min_factor
                    + (1.0 - min_factor) * 0.5 * (1.0 + (std::f64::consts::PI * t).cos());
                self.base_lr * factor
            }
        };
        if step < self.warmup_steps {
            let alpha = step as f64 / self.warmup_steps as f64;
            decayed * (self.warmup_factor * (1.0 - alpha) + alpha)
        } else {
            decayed
        }
    }

    /// Checks the numbers a user may have mistyped.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.base_lr.is_finite() && self.base_lr > 0.0) {
            return Err(format!("base_lr must be positive, got {}", self.base_lr));
        }
        if !(0.0..=1.0).contains(&self.warmup_factor) {
            return Err(format!(
                "warmup_factor must be in [0, 1], got {}",
                self.warmup_factor
            ));
        }
        match &self.decay {
            Decay::Step { milestones, gamma } => {
                if !milestones.windows(2).all(|w| w[0] < w[1]) {
                    return Err(format!("step milestones must increase, got {milestones:?}"));
                }
                if !(*gamma > 0.0 && *gamma <= 1.0) {
                    return Err(format!("step gamma must be in (0, 1], got {gamma}"));
                }
            }
            Decay::Cosine { min_factor, .. } if !(0.0..=1.0).contains(min_factor) => {
                return Err(format!(
                    "cosine min_factor must be in [0, 1], got {min_factor}"
                ));
            }
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn warmup_then_steps() {
        let s = LrSchedule {
            base_lr: 0.1,
            warmup_steps: 10,
            warmup_factor: 0.001,
            decay: Decay::Step {
                milestones: vec![100, 150],
                gamma: 0.1,
            },
        };
        assert!(close(s.lr_at(0), 0.1 * 0.001));
        assert!(close(s.lr_at(5), 0.1 * (0.001 * 0.5 + 0.5)));
        assert!(close(s.lr_at(10), 0.1));
        assert!(close(s.lr_at(99), 0.1));
        assert!(close(s.lr_at(100), 0.01));
        assert!(close(s.lr_at(150), 0.001));
        assert!(s.validate().is_ok());
    }

    #[test]
    fn cosine_reaches_its_floor() {
        let s = LrSchedule {
            base_lr: 1.0,
            warmup_steps: 0,
            warmup_factor: 1.0,
            decay: Decay::Cosine {
                total_steps: 100,
                min_factor: 0.1,
            },
        };
        assert!(close(s.lr_at(0), 1.0));
        assert!(close(s.lr_at(50), 0.55));
        assert!(close(s.lr_at(100), 0.1));
        assert!(close(s.lr_at(500), 0.1));
    }

    #[test]
    fn bad_numbers_are_named() {
        let mut s = LrSchedule {
            base_lr: -1.0,
            warmup_steps: 0,
            warmup_factor: 1.0,
            decay: Decay::Step {
                milestones: vec![5, 3],
                gamma: 0.1,
            },
        };
        assert!(s.validate().unwrap_err().contains("base_lr"));
        s.base_lr = 0.1;
        assert!(s.validate().unwrap_err().contains("milestones"));
    }
}
