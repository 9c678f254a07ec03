//! Status sync: how one pending status change is pushed to its platform.
//!
//! [`ChannelPusher`] implements the db crate's `SyncPush`: it calls the adapter with a
//! deadline, each of the adapter's calls to the platform held to the channel's rate limiter
//! (governor, through `crossdock_channel::http::with_call_gate`: a push the platform has no
//! call for costs nothing, a push of two calls costs two), and turns the answer into a
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
use crossdock_channel::{Channel, ChannelError, PushOutcome, RateLimit, http};
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

    /// Backoff before attempt `attempts + 1` of a push due within `time_left` (an answer
    /// to the platform's offer, before its deadline): as [`RetryPolicy::backoff`], but
    /// never longer than a third of the time left (nor shorter than `first_backoff`), so
    /// that a platform back from an outage hears the answer before it drops the order. A
    /// `Retry-After` is still kept.
    pub fn backoff_within(
        &self,
        attempts: i32,
        retry_after: Option<Duration>,
        time_left: Duration,
    ) -> Duration {
        self.backoff(attempts, None)
            .min((time_left / 3).max(self.first_backoff))
            .max(retry_after.unwrap_or_default())
    }
}

/// Pushes status changes through the channels' adapters.
pub struct ChannelPusher {
    channels: HashMap<String, (Arc<dyn Channel>, Arc<DefaultDirectRateLimiter>)>,
    policy: RetryPolicy,
}

/// The gate that holds each platform call of a push to `limiter`.
fn gate(limiter: &Arc<DefaultDirectRateLimiter>) -> http::CallGate {
    let limiter = limiter.clone();
    Arc::new(move || {
        let limiter = limiter.clone();
        Box::pin(async move { limiter.until_ready().await })
    })
}

impl ChannelPusher {
    /// Pushes through `channels`, each held to its adapter's published limit
    /// ([`Channel::push_rate`]) unless `rates` names the channel: a chain whose agreement
    /// with a platform allows another rate.
    pub fn new(
        channels: &[Arc<dyn Channel>],
        policy: RetryPolicy,
        rates: &HashMap<String, RateLimit>,
    ) -> Self {
        let channels = channels
            .iter()
            .map(|channel| {
                let rate = rates
                    .get(channel.id().as_str())
                    .copied()
                    .unwrap_or_else(|| channel.push_rate());
                let per_second = NonZeroU32::new(rate.per_second).unwrap_or(NonZeroU32::MIN);
                let burst = NonZeroU32::new(rate.burst).unwrap_or(per_second);
                let limiter = Arc::new(RateLimiter::direct(
                    Quota::per_second(per_second).allow_burst(burst),
                ));
                (channel.id().as_str().to_owned(), (channel.clone(), limiter))
            })
            .collect();
        Self { channels, policy }
    }

    /// What a failed push comes to. An answer the platform awaits by a deadline still
    /// ahead is tried again, however many attempts it took, at most a third of the time
    /// left later: parked, it would be lost with the order.
    fn failed(&self, order: &Order, sync: &PendingSync, error: &ChannelError) -> SyncResult {
        let attempt = sync.attempts + 1;
        let now = Utc::now();
        let time_left = order
            .order
            .fulfillment
            .answer_due_by(sync.change.from)
            .and_then(|deadline| (deadline - now).to_std().ok())
            .filter(|left| !left.is_zero());
        if error.is_retryable() && (attempt < self.policy.max_attempts || time_left.is_some()) {
            let wait = match time_left {
                Some(left) => self
                    .policy
                    .backoff_within(sync.attempts, error.retry_after(), left),
                None => self.policy.backoff(sync.attempts, error.retry_after()),
            };
            let at = now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX);
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
        let outcome = tokio::time::timeout(
            self.policy.push_timeout,
            http::with_call_gate(gate(limiter), channel.push(order, &sync.change)),
        )
        .await;
        let result = match outcome {
            Ok(Ok(PushOutcome::Delivered { detail })) => SyncResult::Delivered { detail },
            Ok(Ok(PushOutcome::NotApplicable { why })) => SyncResult::Skipped { why },
            Ok(Err(error)) => self.failed(order, sync, &error),
            Err(_) => self.failed(
                order,
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
    use crossdock_channel::{Delivery, InboundRequest, RateLimit};
    use crossdock_model::{
        ChannelId, Currency, Customer, Fulfillment, FulfillmentKind, NewOrder, OrderId, Payment,
        Status, StatusAction, StatusChange, Timing, Totals,
    };

    use super::*;

    /// A channel whose pushes make `calls` calls to its platform each (through the call
    /// gate, as `http::send` does), or none (the platform has no such call).
    struct Platform {
        id: ChannelId,
        calls: usize,
        rate: RateLimit,
    }

    #[async_trait]
    impl Channel for Platform {
        fn id(&self) -> &ChannelId {
            &self.id
        }

        fn verify(&self, _: &InboundRequest) -> Result<(), ChannelError> {
            Ok(())
        }

        fn parse(&self, _: &InboundRequest) -> Result<Delivery, ChannelError> {
            Err(ChannelError::Unsupported("no webhooks".into()))
        }

        async fn push(&self, _: &Order, _: &StatusChange) -> Result<PushOutcome, ChannelError> {
            if self.calls == 0 {
                return Ok(PushOutcome::NotApplicable {
                    why: "no such call".into(),
                });
            }
            for _ in 0..self.calls {
                http::call_gate().await;
            }
            Ok(PushOutcome::Delivered {
                detail: "200".into(),
            })
        }

        fn push_rate(&self) -> RateLimit {
            self.rate
        }
    }

    fn order(channel: &str) -> Order {
        let now = Utc::now();
        Order {
            id: OrderId::new(),
            received_at: now,
            updated_at: now,
            status: Status::Accepted,
            store_id: None,
            flags: vec![],
            order: NewOrder {
                channel: ChannelId::parse(channel).expect("channel"),
                external_order_id: "x-1".into(),
                display_code: None,
                channel_store_ref: None,
                brand: None,
                platform_brand: None,
                placed_at: now,
                fulfillment: Fulfillment {
                    kind: FulfillmentKind::Pickup,
                    delivered_by: None,
                    address: None,
                    timing: Timing::Asap,
                    promised_at: None,
                    accept_by: None,
                },
                customer: Customer::default(),
                notes: None,
                lines: vec![],
                totals: Totals::zero(Currency::parse("USD").expect("currency")),
                payment: Payment::Prepaid,
                channel_data: Default::default(),
            },
        }
    }

    fn pending() -> PendingSync {
        PendingSync {
            event_id: 1,
            change: StatusChange {
                action: StatusAction::Complete,
                from: Status::Ready,
                at: Utc::now(),
            },
            attempts: 0,
        }
    }

    /// The rate limit is the platform's: a push that makes no call (most of a channel's
    /// "complete" or "preparing") must not wait for it, or a busy channel's syncs fall
    /// behind for calls never made; a push of two calls takes two turns.
    #[tokio::test]
    async fn only_calls_that_reach_the_platform_wait_for_its_rate_limit() {
        // One turn a second: a turn taken shows as none left for the rest of the test.
        let silent: Arc<dyn Channel> = Arc::new(Platform {
            id: ChannelId::parse("silent").expect("id"),
            calls: 0,
            rate: RateLimit {
                per_second: 1,
                burst: 1,
            },
        });
        let calling: Arc<dyn Channel> = Arc::new(Platform {
            id: ChannelId::parse("calling").expect("id"),
            calls: 2,
            rate: RateLimit {
                per_second: 1,
                burst: 5,
            },
        });
        let pusher =
            ChannelPusher::new(&[silent, calling], RetryPolicy::default(), &HashMap::new());
        let limiter = |channel: &str| pusher.channels[channel].1.clone();
        for _ in 0..20 {
            let result = pusher.push(&order("silent"), &pending()).await;
            assert!(matches!(result, SyncResult::Skipped { .. }), "{result:?}");
        }
        assert!(
            limiter("silent").check().is_ok(),
            "twenty pushes without a call took no turn"
        );
        for _ in 0..2 {
            let result = pusher.push(&order("calling"), &pending()).await;
            assert!(matches!(result, SyncResult::Delivered { .. }), "{result:?}");
        }
        let calling = limiter("calling");
        assert!(
            calling.check().is_ok(),
            "two pushes of two calls: four turns of five"
        );
        assert!(calling.check().is_err(), "and no more than four");
    }

    /// A rate the configuration names for a channel replaces its adapter's published one;
    /// the other channels keep theirs.
    #[tokio::test]
    async fn a_configured_rate_replaces_the_published_one() {
        let platform = |id: &str| -> Arc<dyn Channel> {
            Arc::new(Platform {
                id: ChannelId::parse(id).expect("id"),
                calls: 1,
                rate: RateLimit {
                    per_second: 1,
                    burst: 1,
                },
            })
        };
        let rates = HashMap::from([(
            "agreed".to_owned(),
            RateLimit {
                per_second: 1,
                burst: 3,
            },
        )]);
        let pusher = ChannelPusher::new(
            &[platform("agreed"), platform("published")],
            RetryPolicy::default(),
            &rates,
        );
        let turns = |channel: &str| {
            let limiter = pusher.channels[channel].1.clone();
            std::iter::from_fn(|| limiter.check().ok()).take(10).count()
        };
        assert_eq!(turns("agreed"), 3, "the configured burst");
        assert_eq!(turns("published"), 1, "the adapter's own burst");
    }

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
        let minute = Duration::from_secs(60);
        assert_eq!(
            policy.backoff_within(6, None, minute),
            Duration::from_secs(20),
            "a third of the time left, not 32 s"
        );
        assert_eq!(
            policy.backoff_within(1, None, minute),
            Duration::from_secs(1)
        );
        assert_eq!(
            policy.backoff_within(6, None, Duration::from_millis(300)),
            Duration::from_millis(500),
            "never sooner than the first backoff"
        );
        assert_eq!(
            policy.backoff_within(6, Some(Duration::from_secs(45)), minute),
            Duration::from_secs(45),
            "the platform's Retry-After is kept"
        );
    }

    /// An answer the platform awaits by its deadline (here an accept) is retried while the
    /// deadline is ahead, however many attempts it took, and sooner than the usual backoff
    /// when time is short: parked, the order would be lost. Past the deadline, and for
    /// statuses without one, the usual count parks it.
    #[test]
    fn an_answer_due_by_a_deadline_is_retried_within_it() {
        let pusher = ChannelPusher::new(&[], RetryPolicy::default(), &HashMap::new());
        let accept = |attempts| PendingSync {
            event_id: 1,
            change: StatusChange {
                action: StatusAction::Accept { prep_minutes: 10 },
                from: Status::Received,
                at: Utc::now(),
            },
            attempts,
        };
        let down = ChannelError::Platform {
            status: 503,
            body: "down".into(),
        };
        let last_attempt = RetryPolicy::default().max_attempts - 1;
        let mut offered = order("calling");
        offered.order.fulfillment.accept_by = Some(Utc::now() + chrono::Duration::seconds(60));
        match pusher.failed(&offered, &accept(last_attempt), &down) {
            SyncResult::Retry { at, .. } => assert!(
                at <= Utc::now() + chrono::Duration::seconds(20),
                "within a third of the minute left: {at}"
            ),
            other => panic!("an answer before its deadline is retried: {other:?}"),
        }
        let slow_down = ChannelError::RateLimited {
            retry_after: Some(Duration::from_secs(45)),
        };
        match pusher.failed(&offered, &accept(2), &slow_down) {
            SyncResult::Retry { at, .. } => assert!(
                at >= Utc::now() + chrono::Duration::seconds(44),
                "no sooner than the platform's Retry-After: {at}"
            ),
            other => panic!("a 429 is retried: {other:?}"),
        }
        let refused = ChannelError::Platform {
            status: 409,
            body: "order has expired".into(),
        };
        assert!(
            matches!(
                pusher.failed(&offered, &accept(0), &refused),
                SyncResult::Park { .. }
            ),
            "a refusal is not retried"
        );
        let ready = PendingSync {
            attempts: last_attempt,
            ..pending()
        };
        assert!(
            matches!(
                pusher.failed(&offered, &ready, &down),
                SyncResult::Park { .. }
            ),
            "a status after the answer has no deadline"
        );
        offered.order.fulfillment.accept_by = Some(Utc::now() - chrono::Duration::seconds(1));
        assert!(
            matches!(
                pusher.failed(&offered, &accept(last_attempt), &down),
                SyncResult::Park { .. }
            ),
            "past the deadline, the usual count"
        );
    }
}
