//! The one retry policy: every delay that grows after a failure (reconnects, redeliveries, hold
//! retries, SMTP backoff, the pauses of loops that wait for a server) is a [`Backoff`].

use std::time::Duration;

/// Delays that double from `base` up to `cap`, each less a random part of up to `jitter` of
/// itself, so that clients that failed together do not all retry together.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
    /// The fraction (0 to 1) of each delay that may be taken off at random.
    pub jitter: f64,
}

/// The jitter of [`Backoff::new`]: a delay is between 80 % and 100 % of its ceiling.
pub const JITTER: f64 = 0.2;

impl Backoff {
    /// Doubling from `base` to `cap`, with [`JITTER`].
    pub const fn new(base: Duration, cap: Duration) -> Self {
        Self {
            base,
            cap,
            jitter: JITTER,
        }
    }

    /// The same policy with another jitter (0: none, for delays a test or a client reads back).
    pub const fn with_jitter(self, jitter: f64) -> Self {
        Self { jitter, ..self }
    }

    /// The longest delay before retry `n` (1 for the first; less counts as 1):
    /// `base × 2^(n−1)`, at most `cap`.
    pub fn ceiling(&self, n: i64) -> Duration {
        let doublings = n.saturating_sub(1).clamp(0, 30) as u32;
        self.base
            .saturating_mul(2u32.saturating_pow(doublings))
            .min(self.cap)
    }

    /// The delay before retry `n`: its [`Backoff::ceiling`] less up to `jitter` of it.
    pub fn delay(&self, n: i64) -> Duration {
        let ceiling = self.ceiling(n);
        if self.jitter.is_nan() || self.jitter <= 0.0 {
            return ceiling;
        }
        ceiling.mul_f64(1.0 - self.jitter.min(1.0) * fastrand::f64())
    }

    /// A series of retries that starts at retry 1.
    pub fn attempts(self) -> Attempts {
        Attempts {
            policy: self,
            failures: 0,
        }
    }
}

/// The retries of one loop: [`Attempts::next_delay`] after each failure, [`Attempts::reset`]
/// after a success.
#[derive(Debug, Clone)]
pub struct Attempts {
    policy: Backoff,
    failures: i64,
}

impl Attempts {
    /// Counts a failure and gives the delay before the next try.
    pub fn next_delay(&mut self) -> Duration {
        self.failures = self.failures.saturating_add(1);
        self.policy.delay(self.failures)
    }

    /// The delay the next failure would ask for, without counting one: for a pause that is
    /// not a failure but must not grow shorter than the failures before it asked for.
    pub fn upcoming(&self) -> Duration {
        self.policy.delay(self.failures.saturating_add(1))
    }

    /// Starts again from the first delay.
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn delays_double_from_the_base_to_the_cap() {
        let b = Backoff::new(S, 10 * S).with_jitter(0.0);
        let delays: Vec<u64> = (1..=6).map(|n| b.delay(n).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 10, 10]);
        assert_eq!(b.delay(0), S);
        assert_eq!(b.delay(-3), S);
        assert_eq!(b.delay(i64::MAX), 10 * S);
    }

    #[test]
    fn jitter_takes_off_at_most_its_fraction() {
        let b = Backoff::new(S, 60 * S);
        for n in 1..=8 {
            for _ in 0..100 {
                let (d, c) = (b.delay(n), b.ceiling(n));
                assert!(d <= c && d >= c.mul_f64(1.0 - JITTER), "{d:?} of {c:?}");
            }
        }
    }

    #[test]
    fn attempts_count_failures_and_start_again_after_a_success() {
        let mut a = Backoff::new(S, 4 * S).with_jitter(0.0).attempts();
        let first: Vec<u64> = (0..4).map(|_| a.next_delay().as_secs()).collect();
        assert_eq!(first, [1, 2, 4, 4]);
        a.reset();
        assert_eq!(a.next_delay(), S);
    }
}
