//! The platforms' side: orders offered at a fixed rate through every channel's simulator
//! (the demo's rotation over the channels and the chain's stores, each order one to three
//! menu items with modifiers), retried as each platform retries a webhook that got no 2xx;
//! and each simulator's feed of the statuses it heard from the hub.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crossdock_adapter_uber_eats::Generation;
use crossdock_channel::sim::StatusFeed;
use crossdock_hub::demo::{self, Sims, Traffic};
use crossdock_model::Status;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::ledger::{Ledger, Offer};

/// Orders being offered at once, at most: beyond it the hub is far behind, and the
/// platforms' sending rate shows it.
const IN_FLIGHT: usize = 4096;
/// How long a platform retries an order the hub did not acknowledge.
const GIVE_UP_AFTER: Duration = Duration::from_secs(60);

/// The platforms: the simulators and where the hub is.
pub struct Platforms {
    pub sims: Arc<Sims>,
    pub ledger: Arc<Ledger>,
    pub http: reqwest::Client,
    /// The hub's API (Dianping vouchers are redeemed through it).
    pub hub: String,
    /// Uber Eats orders alternate between its classic and its new API.
    uber_orders: AtomicU64,
}

impl Platforms {
    pub fn new(sims: Arc<Sims>, ledger: Arc<Ledger>, hub: String) -> Platforms {
        Platforms {
            sims,
            ledger,
            http: reqwest::Client::new(),
            hub,
            uber_orders: AtomicU64::new(0),
        }
    }
}

/// Offers orders at `per_second` for `duration`, recorded as step `step`; returns once
/// every offer is settled (acknowledged, or given up on).
pub async fn offer(
    platforms: &Arc<Platforms>,
    rotation: &mut Traffic,
    step: usize,
    per_second: f64,
    duration: Duration,
) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / per_second.max(0.1)));
    // The timer's granularity is a millisecond: above 1,000 a second, ticks come in
    // bursts that keep the rate.
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let end = tokio::time::Instant::now() + duration;
    let mut tasks = JoinSet::new();
    while tokio::time::Instant::now() < end {
        tick.tick().await;
        let Some((channel, store, sample)) = rotation.next_sample() else {
            tracing::error!("No channel can take orders.");
            break;
        };
        let Ok(permit) = slots.clone().acquire_owned().await else {
            break;
        };
        let token = rotation.token(&store.id).map(str::to_owned);
        let platforms = platforms.clone();
        tasks.spawn(async move {
            let _permit = permit;
            offer_one(&platforms, step, channel, sample, token).await;
        });
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
}

/// One order, offered until the hub acknowledges it or the platform gives up.
async fn offer_one(
    platforms: &Platforms,
    step: usize,
    channel: &'static str,
    sample: crossdock_channel::sim::SampleOrder,
    token: Option<String>,
) {
    let generation = if channel == "uber_eats"
        && platforms.uber_orders.fetch_add(1, Ordering::Relaxed) % 2 == 1
    {
        Generation::V1
    } else {
        Generation::Classic
    };
    let sent = Instant::now();
    let placed = demo::offer(
        &platforms.sims,
        channel,
        generation,
        &sample,
        &platforms.http,
        &platforms.hub,
        token.as_deref(),
    )
    .await;
    let answered = Instant::now();
    let mut offer = Offer {
        step,
        channel,
        external_order_id: None,
        sent,
        answered,
        acked: false,
        attempts: 1,
    };
    let mut offered = match placed {
        Ok(offered) => offered,
        Err(error) => {
            tracing::warn!(channel, error = %format!("{error:#}"), "The simulator could not offer an order.");
            platforms.ledger.offered(offer);
            return;
        }
    };
    let mut delay = Duration::from_millis(100);
    while !offered.acked && sent.elapsed() < GIVE_UP_AFTER {
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
        if !demo::resend(
            &platforms.sims,
            &mut offered,
            &platforms.http,
            &platforms.hub,
        )
        .await
        {
            break;
        }
        offer.attempts += 1;
    }
    if !offered.acked {
        tracing::warn!(channel, answer = %offered.answer_line(), "The hub did not acknowledge an order.");
    }
    offer.acked = offered.acked;
    offer.external_order_id = offered.external_order_id;
    platforms.ledger.offered(offer);
}

/// Every running simulator's feed of the statuses it heard from the hub.
fn feeds(sims: &Sims) -> Vec<(&'static str, StatusFeed)> {
    let mut feeds = Vec::new();
    let mut add = |channel, feed: Option<&StatusFeed>| {
        if let Some(feed) = feed {
            feeds.push((channel, feed.clone()));
        }
    };
    add("own_app", sims.own_app.as_ref().map(|s| s.status_feed()));
    add(
        "uber_eats",
        sims.uber_eats.as_ref().map(|s| s.status_feed()),
    );
    add("pos", sims.pos.as_ref().map(|s| s.status_feed()));
    add("doordash", sims.doordash.as_ref().map(|s| s.status_feed()));
    add(
        "deliveroo",
        sims.deliveroo.as_ref().map(|s| s.status_feed()),
    );
    add("meituan", sims.meituan.as_ref().map(|s| s.status_feed()));
    add("eleme", sims.eleme.as_ref().map(|s| s.status_feed()));
    add("google", sims.google.as_ref().map(|s| s.status_feed()));
    add("dianping", sims.dianping.as_ref().map(|s| s.status_feed()));
    feeds
}

/// Records in `ledger` every accept a platform hears, from now on, until the simulators
/// stop.
pub fn listen(sims: &Sims, ledger: &Arc<Ledger>) -> JoinSet<()> {
    let mut tasks = JoinSet::new();
    for (channel, feed) in feeds(sims) {
        let mut heard = feed.subscribe();
        let ledger = ledger.clone();
        tasks.spawn(async move {
            while let Some(heard) = heard.recv().await {
                if heard.status == Status::Accepted {
                    ledger.heard(channel, &heard.external_order_id, heard.at);
                }
            }
        });
    }
    tasks
}
