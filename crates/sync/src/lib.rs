//! Status sync: how one pending status change is pushed to its platform.
//!
//! [`ChannelPusher`] implements the db crate's `SyncPush`: it waits for the channel's rate
//! limiter (governor), calls the adapter with a deadline, and turns the answer into a
//! [`SyncResult`]: delivered, skipped (the platform has no such call), retry later with
//! exponential backoff (429 with its `Retry-After`, 5xx, timeouts), or parked for HQ
//! (a permanent refusal, or too many failed attempts). Ordering per order and
//! exactly-once bookkeeping live in `crossdock_db::sync`; the worker loop that feeds it
//! lives in the hub.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use crossdock_channel::{Channel, ChannelError, PushOutcome};
use crossdock_db::sync::{PendingSync, SyncPush, SyncResult};
use crossdock_model::Order;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

/// When to give up and how long to wait between attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts before a retryable failure is parked.
    pub max_attempts: i32,
    pub first_backoff: Duration,
    pub max_backoff: Duration,
    /// Deadline of one push, whatever the adapter's own timeouts.
    pub push_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            first_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(120),
            push_timeout: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// Backoff before attempt `attempts + 1`: doubling from `first_backoff`, capped, and
    /// never shorter than the platform's `Retry-After`.
    pub fn backoff(&self, attempts: i32, retry_after: Option<Duration>) -> Duration {
        let exponent = u32::try_from(attempts.clamp(0, 20)).unwrap_or(20);
        let doubled = self
            .first_backoff
            .saturating_mul(2_u32.saturating_pow(exponent));
        doubled
            .min(self.max_backoff)
            .max(retry_after.unwrap_or_default())
    }
}

/// Pushes status changes through the channels' adapters.
pub struct ChannelPusher {
    channels: HashMap<String, (Arc<dyn Channel>, DefaultDirectRateLimiter)>,
    policy: RetryPolicy,
}

impl ChannelPusher {
    pub fn new(channels: &[Arc<dyn Channel>], policy: RetryPolicy) -> Self {
        let channels = channels
            .iter()
            .map(|channel| {
                let rate = channel.push_rate();
                let per_second = NonZeroU32::new(rate.per_second).unwrap_or(NonZeroU32::MIN);
                let burst = NonZeroU32::new(rate.burst).unwrap_or(per_second);
                let limiter = RateLimiter::direct(Quota::per_second(per_second).allow_burst(burst));
                (channel.id().as_str().to_owned(), (channel.clone(), limiter))
            })
            .collect();
        Self { channels, policy }
    }

    fn failed(&self, sync: &PendingSync, error: &ChannelError) -> SyncResult {
        let attempt = sync.attempts + 1;
        if error.is_retryable() && attempt < self.policy.max_attempts {
            let wait = self.policy.backoff(sync.attempts, error.retry_after());
            let at = Utc::now() + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX);
            SyncResult::Retry {
                error: format!("attempt {attempt}: {error}"),
                at,
            }
        } else if error.is_retryable() {
            SyncResult::Park {
                error: format!("gave up after {attempt} attempts: {error}"),
            }
        } else {
            SyncResult::Park {
                error: format!("refused by the platform: {error}"),
            }
        }
    }
}

#[async_trait]
impl SyncPush for ChannelPusher {
    async fn push(&self, order: &Order, sync: &PendingSync) -> SyncResult {
        let channel_id = order.order.channel.as_str();
        let Some((channel, limiter)) = self.channels.get(channel_id) else {
            return SyncResult::Park {
                error: format!("no adapter is configured for channel {channel_id}"),
            };
        };
        limiter.until_ready().await;
        let outcome =
            tokio::time::timeout(self.policy.push_timeout, channel.push(order, &sync.change)).await;
        let result = match outcome {
            Ok(Ok(PushOutcome::Delivered { detail })) => SyncResult::Delivered { detail },
            Ok(Ok(PushOutcome::NotApplicable { why })) => SyncResult::Skipped { why },
            Ok(Err(error)) => self.failed(sync, &error),
            Err(_) => self.failed(
                sync,
                &ChannelError::Transport(format!(
                    "no answer within {:?}",
                    self.policy.push_timeout
                )),
            ),
        };
        match &result {
            SyncResult::Delivered { .. } | SyncResult::Skipped { .. } => {
                tracing::debug!(channel = channel_id, order_id = %order.id, action = %sync.change.action.target(), "Status synced.");
            }
            SyncResult::Retry { error, .. } => {
                tracing::warn!(channel = channel_id, order_id = %order.id, %error, "Status sync failed; will retry.");
            }
            SyncResult::Park { error } => {
                tracing::error!(channel = channel_id, order_id = %order.id, %error, "Status sync parked for HQ.");
            }
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_caps_and_respects_retry_after() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.backoff(0, None), Duration::from_millis(500));
        assert_eq!(policy.backoff(1, None), Duration::from_secs(1));
        assert_eq!(policy.backoff(3, None), Duration::from_secs(4));
        assert_eq!(policy.backoff(30, None), Duration::from_secs(120));
        assert_eq!(
            policy.backoff(0, Some(Duration::from_secs(7))),
            Duration::from_secs(7)
        );
    }
}
