//! `--shard K/N`: the K-th of N interleaved parts of a list of scans, so
//! that the N jobs of a cluster's job array split a collection with no
//! coordination: job K takes items K, K + N, K + 2N, ... (1-based).

use uld_core::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// 1-based: which part.
    pub index: usize,
    /// How many parts.
    pub count: usize,
}

impl Shard {
    /// Parses `K/N` with `1 <= K <= N`.
    pub fn parse(s: &str) -> Result<Self> {
        let invalid = |m: String| Error::invalid("shard", m);
        let (k, n) = s
            .split_once('/')
            .ok_or_else(|| invalid(format!("`{s}` is not K/N (e.g. 2/8)")))?;
        let number = |t: &str| {
            t.trim()
                .parse::<usize>()
                .map_err(|_| invalid(format!("`{t}` in `{s}` is not a whole number")))
        };
        let (index, count) = (number(k)?, number(n)?);
        if count == 0 || index == 0 || index > count {
            return Err(invalid(format!(
                "`{s}`: K must lie in 1..=N (N >= 1); with a 0-based job array use K = task id + 1"
            )));
        }
        Ok(Self { index, count })
    }

    /// The items of this shard, in their order.
    pub fn take<T: Clone>(&self, items: &[T]) -> Vec<T> {
        items
            .iter()
            .skip(self.index - 1)
            .step_by(self.count)
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shards_of_a_list_cover_it_once_each() {
        let items: Vec<u32> = (0..10).collect();
        let mut seen = Vec::new();
        for k in 1..=3 {
            let shard = Shard::parse(&format!("{k}/3")).unwrap();
            seen.extend(shard.take(&items));
        }
        seen.sort();
        assert_eq!(seen, items);
        assert_eq!(Shard::parse("2/3").unwrap().take(&items), vec![1, 4, 7]);
        assert_eq!(
            Shard::parse("4/4").unwrap().take(&[1, 2]),
            Vec::<i32>::new()
        );
        for bad in ["0/4", "5/4", "1/0", "2", "a/b", "-1/3"] {
            assert!(Shard::parse(bad).is_err(), "{bad}");
        }
        assert!(
            Shard::parse("0/4")
                .unwrap_err()
                .to_string()
                .contains("task id + 1")
        );
    }
}
