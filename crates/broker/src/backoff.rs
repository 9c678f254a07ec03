//! Reconnect delays shared by the publisher, the consumers and the hub's PostgreSQL
//! reconnects: exponential, capped, jittered.
//!
//! The jitter (±20 %) keeps the many sessions of a hub (one per consumer, one publisher)
//! from retrying in lockstep after a broker restart, which would hit the broker with all
//! their connects at once, again and again.

use std::time::Duration;

use rand::Rng;

/// First reconnect delay, before jitter.
const INITIAL: Duration = Duration::from_millis(100);
/// Longest reconnect delay, before jitter.
const MAX: Duration = Duration::from_secs(5);
/// Each delay is stretched or shrunk by a random fraction up to this much.
const JITTER: f64 = 0.2;

/// Exponential backoff: 100 ms doubling up to 5 s, each delay randomly within ±20 %.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self { next: INITIAL }
    }
}

impl Backoff {
    /// The delay to wait now (jittered); the following one is nominally twice as long
    /// (capped).
    pub fn next_delay(&mut self) -> Duration {
        let fraction = rand::rng().random_range(-JITTER..=JITTER);
        jittered(self.advance(), fraction)
    }

    /// Back to the first delay, after a success.
    pub fn reset(&mut self) {
        self.next = INITIAL;
    }

    /// The nominal delay to wait now, and the step to the next one.
    fn advance(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(MAX);
        delay
    }
}

/// `delay` stretched by `fraction` (-0.2 shortens it by a fifth).
fn jittered(delay: Duration, fraction: f64) -> Duration {
    delay.mul_f64(1.0 + fraction)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOMINAL_MS: [u128; 8] = [100, 200, 400, 800, 1600, 3200, 5000, 5000];

    #[test]
    fn backoff_doubles_to_five_seconds_and_resets() {
        let mut backoff = Backoff::default();
        let delays: Vec<u128> = (0..8).map(|_| backoff.advance().as_millis()).collect();
        assert_eq!(delays, NOMINAL_MS);
        backoff.reset();
        assert_eq!(backoff.advance(), Duration::from_millis(100));
    }

    #[test]
    fn delays_are_jittered_within_twenty_percent_of_the_nominal_ones() {
        let mut seen_first = Vec::new();
        for _ in 0..50 {
            let mut backoff = Backoff::default();
            for nominal in NOMINAL_MS {
                let delay = backoff.next_delay().as_secs_f64() * 1000.0;
                let nominal = nominal as f64;
                assert!(
                    delay >= nominal * 0.8 - 1e-6 && delay <= nominal * 1.2 + 1e-6,
                    "{delay} ms is not within 20 % of {nominal} ms"
                );
            }
            backoff.reset();
            seen_first.push(backoff.next_delay());
        }
        // Fifty draws from a continuous range: all equal would mean no jitter at all.
        assert!(
            seen_first.iter().any(|delay| *delay != seen_first[0]),
            "{seen_first:?}"
        );
    }

    #[test]
    fn jitter_scales_the_delay() {
        let second = Duration::from_secs(1);
        assert_eq!(jittered(second, 0.0), second);
        assert_eq!(jittered(second, 0.2), Duration::from_millis(1200));
        assert_eq!(jittered(second, -0.2), Duration::from_millis(800));
    }
}
