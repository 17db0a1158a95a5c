//! What to do with a non-finite loss: skip the step and count it; stop the
//! run when too many come in a row (the last good checkpoint stays).

#[derive(Debug, Clone)]
pub struct NanGuard {
    max_consecutive: u32,
    consecutive: u32,
    /// Non-finite steps skipped over the whole run.
    pub skipped: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Step,
    Skip,
    Stop,
}

impl NanGuard {
    pub fn new(max_consecutive: u32) -> Self {
        Self {
            max_consecutive,
            consecutive: 0,
            skipped: 0,
        }
    }

    pub fn check(&mut self, loss: f64) -> Verdict {
        if loss.is_finite() {
            self.consecutive = 0;
            return Verdict::Step;
        }
        self.consecutive += 1;
        self.skipped += 1;
        if self.consecutive >= self.max_consecutive {
            Verdict::Stop
        } else {
            Verdict::Skip
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_isolated_nans_and_stops_on_a_run_of_them() {
        let mut g = NanGuard::new(3);
        assert_eq!(g.check(1.0), Verdict::Step);
        assert_eq!(g.check(f64::NAN), Verdict::Skip);
        assert_eq!(g.check(f64::INFINITY), Verdict::Skip);
        assert_eq!(g.check(0.5), Verdict::Step);
        assert_eq!(g.check(f64::NAN), Verdict::Skip);
        assert_eq!(g.check(f64::NAN), Verdict::Skip);
        assert_eq!(g.check(f64::NAN), Verdict::Stop);
        assert_eq!(g.skipped, 5);
    }
}
