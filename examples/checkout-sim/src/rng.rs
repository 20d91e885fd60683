//! A small seeded PRNG (xoshiro256**) and the distributions the simulator draws from.
//!
//! Kept in-house rather than taken from `rand` so that the byte-exact output for a seed can never
//! change under a dependency upgrade.

/// xoshiro256** seeded through splitmix64.
#[derive(Debug, Clone)]
pub(crate) struct Rng {
    s: [u64; 4],
}

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        let mut sm = seed;
        let s = [
            splitmix64(&mut sm),
            splitmix64(&mut sm),
            splitmix64(&mut sm),
            splitmix64(&mut sm),
        ];
        Rng { s }
    }

    /// An independent stream for item `index` of stream `stream`.
    pub(crate) fn derive(seed: u64, stream: u64, index: u64) -> Rng {
        let mut sm = seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let a = splitmix64(&mut sm);
        Rng::new(a ^ index.wrapping_mul(0xD1B5_4A32_D192_ED03))
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1).
    pub(crate) fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in [0, n); `n > 0`.
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        // Multiply-shift: bias is below 2^-64 * n, irrelevant here.
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// Uniform in [lo, hi].
    pub(crate) fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    pub(crate) fn chance(&mut self, p: f64) -> bool {
        self.f64() < p
    }

    /// A non-zero 64-bit id.
    pub(crate) fn id64(&mut self) -> u64 {
        loop {
            let v = self.next_u64();
            if v != 0 {
                return v;
            }
        }
    }

    /// A 128-bit id with both halves non-zero, so its low 64 bits (the Datadog spelling) differ
    /// from the whole id.
    pub(crate) fn id128(&mut self) -> u128 {
        ((self.id64() as u128) << 64) | self.id64() as u128
    }

    /// Standard normal (Box-Muller; one value per call keeps the stream simple).
    pub(crate) fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.f64(); // (0, 1]
        let u2 = self.f64();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Log-normal latency in nanoseconds with the given median (ms) and shape `sigma`.
    pub(crate) fn latency(&mut self, median_ms: f64, sigma: f64) -> i64 {
        let ms = median_ms * (sigma * self.normal()).exp();
        (ms * 1e6).max(1_000.0) as i64
    }

    /// Exponential inter-arrival time in nanoseconds for `rate` events per second.
    pub(crate) fn exp_interval(&mut self, rate: f64) -> i64 {
        let u = 1.0 - self.f64();
        ((-u.ln() / rate) * 1e9).max(1.0) as i64
    }

    /// Index into `weights`, drawn proportionally.
    pub(crate) fn weighted(&mut self, weights: &[u32]) -> usize {
        let total: u32 = weights.iter().sum();
        let mut x = self.below(total as u64) as u32;
        for (i, w) in weights.iter().enumerate() {
            if x < *w {
                return i;
            }
            x -= w;
        }
        weights.len() - 1
    }

    /// A rank in [1, n] with a log-uniform (heavily skewed) distribution: rank 1 is the most common.
    pub(crate) fn skewed_rank(&mut self, n: u64) -> u64 {
        let r = ((n as f64).ln() * self.f64()).exp() as u64;
        r.clamp(1, n)
    }
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream() {
        let mut a = Rng::new(42);
        let mut b = Rng::new(42);
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        let mut c = Rng::derive(42, 1, 7);
        let x = c.below(10);
        assert!(x < 10);
    }

    #[test]
    fn latency_median_is_roughly_right() {
        let mut r = Rng::new(1);
        let mut v: Vec<i64> = (0..10_001).map(|_| r.latency(100.0, 0.5)).collect();
        v.sort_unstable();
        let median_ms = v[5000] as f64 / 1e6;
        assert!((85.0..115.0).contains(&median_ms), "{median_ms}");
    }
}
