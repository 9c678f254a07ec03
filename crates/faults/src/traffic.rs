//! Steady traffic: orders at a fixed rate, rotating over every channel whose simulator runs
//! (the demo's rotation, stores and menu), each offered until the hub acknowledges it or
//! the platform gives up — platforms retry a webhook that got no 2xx — and a share of them
//! delivered twice, as platforms do.

use std::sync::Arc;
use std::time::Duration;

use crossdock_adapter_uber_eats::Generation;
use crossdock_channel::sim::WebhookAnswer;
use crossdock_hub::demo::{self, Offered, Resend, Sims, Traffic};
use rand::Rng;
use tokio::sync::Semaphore;

use crate::ledger::Ledger;

/// How long a platform retries a webhook before it gives up on the hub.
const GIVE_UP_AFTER: Duration = Duration::from_secs(180);
/// Orders being offered at once, at most (the rest wait: the offered rate drops while the
/// hub is down, as a platform's queue of retries would).
const IN_FLIGHT: usize = 512;

pub struct Load {
    pub sims: Arc<Sims>,
    pub ledger: Arc<Ledger>,
    pub http: reqwest::Client,
    /// The hub's API (Dianping vouchers are redeemed through it).
    pub hub: String,
    /// Share of acknowledged orders delivered a second time.
    pub duplicate_share: f64,
}

/// Offers orders at `per_second` for `duration`; returns once every offer is settled.
pub async fn run(load: Arc<Load>, mut rotation: Traffic, per_second: f64, duration: Duration) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / per_second.max(0.1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let end = tokio::time::Instant::now() + duration;
    let mut tasks = tokio::task::JoinSet::new();
    while tokio::time::Instant::now() < end {
        tick.tick().await;
        let Some((channel, store, sample)) = rotation.next_sample() else {
            tracing::error!("No channel can take orders; the traffic stops.");
            break;
        };
        let Ok(permit) = slots.clone().acquire_owned().await else {
            break;
        };
        let load = load.clone();
        let token = rotation.token(&store.id).map(str::to_owned);
        tasks.spawn(async move {
            let _permit = permit;
            offer_until_settled(&load, channel, sample, token).await;
        });
        // Reap finished offers as we go so the set stays small.
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
}

async fn offer_until_settled(
    load: &Load,
    channel: &'static str,
    sample: crossdock_channel::sim::SampleOrder,
    token: Option<String>,
) {
    if let Some(phone) = &sample.customer_phone {
        load.ledger.phone(phone);
    }
    let placed = demo::offer(
        &load.sims,
        channel,
        Generation::Classic,
        &sample,
        &load.http,
        &load.hub,
        token.as_deref(),
    )
    .await;
    let mut offered = match placed {
        Ok(offered) => offered,
        Err(error) => {
            load.ledger.offered(Offered {
                channel,
                external_order_id: None,
                acked: false,
                answer: WebhookAnswer {
                    status: 0,
                    body: format!("{error:#}"),
                },
                resend: Resend::Nothing,
            });
            return;
        }
    };
    let started = tokio::time::Instant::now();
    let mut delay = Duration::from_millis(250);
    while !offered.acked && started.elapsed() < GIVE_UP_AFTER {
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
        if !demo::resend(&load.sims, &mut offered, &load.http, &load.hub).await {
            break;
        }
    }
    let resendable = !matches!(offered.resend, Resend::Nothing | Resend::Dianping { .. });
    if offered.acked && resendable && rand::rng().random_bool(load.duplicate_share.clamp(0.0, 1.0))
    {
        // The platform delivers the same webhook again; the hub must answer it as taken
        // and change nothing.
        let mut again = offered.clone();
        if demo::resend(&load.sims, &mut again, &load.http, &load.hub).await && !again.acked {
            tracing::warn!(channel, answer = %again.answer_line(), "A duplicate delivery was not acknowledged.");
        }
    }
    load.ledger.offered(offered);
}
