//! Steady traffic: orders at a fixed rate, rotating over every channel whose simulator runs
//! (the demo's rotation, stores and menu), each offered until the hub acknowledges it or
//! the platform gives up — platforms retry a webhook that got no 2xx — and a share of them
//! delivered twice, as platforms do.
//!
//! Platforms also send their events out of order. On the channels whose platform cancels
//! by webhook ([`platforms::CANCELLING`]), a share of orders is cancelled
//! ([`CancelPlan`]): before the order arrives (its first delivery lost, the platform's
//! retry after the cancellation), while it arrives (both in flight at once), twice, or once
//! the platform heard the store accept it. On the channels whose platform's courier reports
//! progress ([`platforms::COURIERS`]), a share of orders are deliveries by the platform's
//! courier whose events arrive out of order: "delivered" before "picked up", once the
//! platform heard the store accept. Each such event is counted as a fault that struck.

use std::sync::Arc;
use std::time::Duration;

use crossdock_adapter_uber_eats::Generation;
use crossdock_channel::sim::{SampleFulfillment, SampleOrder, WebhookAnswer};
use crossdock_hub::demo::{self, Offered, Resend, Sims, Traffic};
use crossdock_model::{Status, StoreProfile};
use rand::Rng;
use rand::seq::IndexedRandom;
use tokio::sync::Semaphore;

use crate::ledger::{CancelPlan, Ledger};
use crate::platforms;

/// How long a platform retries a webhook before it gives up on the hub.
const GIVE_UP_AFTER: Duration = Duration::from_secs(180);
/// Orders being offered at once, at most (the rest wait while the hub is down, as a
/// platform's queue of orders would, and go out once offers settle again: the run offers
/// `rate × seconds` orders in all).
const IN_FLIGHT: usize = 512;
/// How long a platform waits to hear that the store accepted an order before it sends
/// what it planned for after that (the customer's cancellation, the courier's events)
/// anyway.
const ACCEPT_WAIT: Duration = Duration::from_secs(90);

pub struct Load {
    pub sims: Arc<Sims>,
    pub ledger: Arc<Ledger>,
    pub http: reqwest::Client,
    /// The hub's API (Dianping vouchers are redeemed through it).
    pub hub: String,
    /// Share of acknowledged orders delivered a second time.
    pub duplicate_share: f64,
    /// Share of the orders of cancelling channels that the platform cancels.
    pub cancel_share: f64,
    /// Share of the orders of courier channels that are delivered by the platform's
    /// courier, whose events arrive out of order.
    pub courier_share: f64,
}

/// What the platform does with an order besides placing it.
#[derive(Debug, Clone, Copy)]
enum Plan {
    Plain,
    Cancel(CancelPlan),
    Courier,
}

fn plan(load: &Load, channel: &str, rng: &mut impl Rng) -> Plan {
    if platforms::CANCELLING.contains(&channel)
        && rng.random_bool(load.cancel_share.clamp(0.0, 1.0))
    {
        // The own app's status is read back from its whole call record: too slow to poll.
        let plans: Vec<CancelPlan> = CancelPlan::ALL
            .into_iter()
            .filter(|p| channel != "own_app" || *p != CancelPlan::AfterAccept)
            .collect();
        if let Some(plan) = plans.choose(rng) {
            return Plan::Cancel(*plan);
        }
    }
    if platforms::COURIERS.contains(&channel) && rng.random_bool(load.courier_share.clamp(0.0, 1.0))
    {
        return Plan::Courier;
    }
    Plan::Plain
}

/// A delivery near `store` by the platform's courier.
fn courier_delivery(sample: &mut SampleOrder, store: &StoreProfile, rng: &mut impl Rng) {
    sample.fulfillment = SampleFulfillment::Delivery {
        lat: store.location.lat + rng.random_range(-0.002..0.002),
        lng: store.location.lng + rng.random_range(-0.002..0.002),
        address_lines: vec![format!("{} Courier Rd", rng.random_range(1..400))],
        city: store.city.clone(),
        postcode: String::new(),
        country: store.country.clone(),
    };
}

/// Offers orders at `per_second` for `duration`; returns once every offer is settled.
pub async fn run(load: Arc<Load>, mut rotation: Traffic, per_second: f64, duration: Duration) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / per_second.max(0.1)));
    // Customers keep ordering while the hub is down: orders held back by the cap on
    // offers in flight go out as soon as it allows, catching up with the rate.
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let end = tokio::time::Instant::now() + duration;
    let mut tasks = tokio::task::JoinSet::new();
    while tokio::time::Instant::now() < end {
        tick.tick().await;
        let Some((channel, store, mut sample)) = rotation.next_sample() else {
            tracing::error!("No channel can take orders; the traffic stops.");
            break;
        };
        let plan = {
            let mut rng = rand::rng();
            let plan = plan(&load, channel, &mut rng);
            if matches!(plan, Plan::Courier) {
                courier_delivery(&mut sample, &store, &mut rng);
            }
            plan
        };
        let Ok(permit) = slots.clone().acquire_owned().await else {
            break;
        };
        let load = load.clone();
        let token = rotation.token(&store.id).map(str::to_owned);
        tasks.spawn(async move {
            let _permit = permit;
            match plan {
                Plan::Plain => offer_until_settled(&load, channel, sample, token).await,
                Plan::Cancel(plan) => cancelled_order(&load, channel, sample, plan).await,
                Plan::Courier => courier_order(&load, channel, sample).await,
            }
        });
        // Reap finished offers as we go so the set stays small.
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
}

/// An offer the simulator could not even make.
fn failed_offer(channel: &'static str, why: String) -> Offered {
    Offered {
        channel,
        external_order_id: None,
        acked: false,
        answer: WebhookAnswer {
            status: 0,
            body: why,
        },
        resend: Resend::Nothing,
    }
}

/// Sends the offered order again until the hub acknowledges it or the platform gives up;
/// `at_once`: the first resend goes now (a first delivery that was lost).
async fn resend_until_acked(load: &Load, offered: &mut Offered, at_once: bool) {
    let started = tokio::time::Instant::now();
    let mut delay = Duration::from_millis(250);
    let mut first = at_once;
    while !offered.acked && started.elapsed() < GIVE_UP_AFTER {
        if !first {
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
        }
        first = false;
        if !demo::resend(&load.sims, offered, &load.http, &load.hub).await {
            break;
        }
    }
}

/// Places an order and offers it until settled; returns it (not yet in the ledger).
async fn place(
    load: &Load,
    channel: &'static str,
    sample: &SampleOrder,
    token: Option<&str>,
) -> Offered {
    if let Some(phone) = &sample.customer_phone {
        load.ledger.phone(phone);
    }
    let placed = demo::offer(
        &load.sims,
        channel,
        Generation::Classic,
        sample,
        &load.http,
        &load.hub,
        token,
    )
    .await;
    let mut offered = match placed {
        Ok(offered) => offered,
        Err(error) => return failed_offer(channel, format!("{error:#}")),
    };
    resend_until_acked(load, &mut offered, false).await;
    offered
}

async fn offer_until_settled(
    load: &Load,
    channel: &'static str,
    sample: SampleOrder,
    token: Option<String>,
) {
    let offered = place(load, channel, &sample, token.as_deref()).await;
    duplicate_now_and_then(load, &offered).await;
    load.ledger.offered(offered);
}

/// Delivers an acknowledged order's webhook a second time, for a share of orders.
async fn duplicate_now_and_then(load: &Load, offered: &Offered) {
    let resendable = !matches!(offered.resend, Resend::Nothing | Resend::Dianping { .. });
    if offered.acked && resendable && rand::rng().random_bool(load.duplicate_share.clamp(0.0, 1.0))
    {
        // The platform delivers the same webhook again; the hub must answer it as taken
        // and change nothing.
        let mut again = offered.clone();
        if demo::resend(&load.sims, &mut again, &load.http, &load.hub).await && !again.acked {
            tracing::warn!(channel = offered.channel, answer = %again.answer_line(), "A duplicate delivery was not acknowledged.");
        }
    }
}

/// The platform cancels the order until the hub takes the cancellation (or the platform
/// gives up); whether it did.
async fn cancel_until_taken(load: &Load, channel: &str, external_order_id: &str) -> bool {
    let started = tokio::time::Instant::now();
    let mut delay = Duration::from_millis(250);
    loop {
        let Some(answer) = platforms::cancel(&load.sims, channel, external_order_id).await else {
            load.ledger.cancel_not_sent(
                channel,
                external_order_id,
                "the platform sends no cancellation for this order".into(),
            );
            return false;
        };
        let taken = platforms::taken(channel, &answer);
        load.ledger.cancel_answered(
            channel,
            external_order_id,
            taken,
            format!(
                "{} {}",
                answer.status,
                answer.body.chars().take(120).collect::<String>()
            ),
        );
        if taken {
            return true;
        }
        if started.elapsed() >= GIVE_UP_AFTER {
            return false;
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

/// Waits until the platform has heard the store accept the order (or anything after);
/// its status then, `None` if it heard nothing in time.
async fn platform_heard_accept(
    load: &Load,
    channel: &str,
    external_order_id: &str,
) -> Option<Status> {
    let deadline = tokio::time::Instant::now() + ACCEPT_WAIT;
    loop {
        let status = platforms::status(&load.sims, channel, external_order_id);
        if let Some(status) = status
            && (status.has_reached(Status::Accepted) || status.is_final())
        {
            return Some(status);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn cancelled_order(
    load: &Load,
    channel: &'static str,
    sample: SampleOrder,
    plan: CancelPlan,
) {
    if let Some(phone) = &sample.customer_phone {
        load.ledger.phone(phone);
    }
    match plan {
        CancelPlan::BeforeTheOrder | CancelPlan::WithTheOrder => {
            let Some(mut offered) = platforms::place_lost(&load.sims, channel, &sample).await
            else {
                load.ledger
                    .offered(failed_offer(channel, "no simulator to place it".into()));
                return;
            };
            let external = offered.external_order_id.clone().unwrap_or_default();
            load.ledger.cancel_planned(channel, &external, plan);
            if plan == CancelPlan::BeforeTheOrder {
                cancel_until_taken(load, channel, &external).await;
                resend_until_acked(load, &mut offered, true).await;
            } else {
                tokio::join!(
                    cancel_until_taken(load, channel, &external),
                    resend_until_acked(load, &mut offered, true)
                );
            }
            load.ledger.offered(offered);
        }
        CancelPlan::Twice | CancelPlan::AfterAccept => {
            let Some(external) = place_acknowledged(load, channel, &sample).await else {
                return;
            };
            load.ledger.cancel_planned(channel, &external, plan);
            if plan == CancelPlan::AfterAccept {
                match platform_heard_accept(load, channel, &external).await {
                    Some(status) if status.is_final() => {
                        load.ledger.cancel_not_sent(
                            channel,
                            &external,
                            format!("the platform has the order {status} already"),
                        );
                        return;
                    }
                    _ => {}
                }
            }
            if cancel_until_taken(load, channel, &external).await && plan == CancelPlan::Twice {
                // The same cancellation again: the hub must take it and change nothing.
                if let Some(answer) = platforms::cancel(&load.sims, channel, &external).await {
                    let taken = platforms::taken(channel, &answer);
                    if !taken {
                        load.ledger.cancel_answered(
                            channel,
                            &external,
                            false,
                            format!("again: {} {}", answer.status, answer.body),
                        );
                    }
                }
            }
        }
    }
}

/// Places an order and records the offer; its platform id if the hub acknowledged it.
async fn place_acknowledged(
    load: &Load,
    channel: &'static str,
    sample: &SampleOrder,
) -> Option<String> {
    let offered = place(load, channel, sample, None).await;
    let external = offered.external_order_id.clone();
    let acked = offered.acked;
    load.ledger.offered(offered);
    external.filter(|_| acked)
}

/// A delivery by the platform's courier whose events arrive out of order: once the
/// platform heard the store accept, "delivered", then "picked up".
async fn courier_order(load: &Load, channel: &'static str, sample: SampleOrder) {
    let Some(external) = place_acknowledged(load, channel, &sample).await else {
        return;
    };
    match platform_heard_accept(load, channel, &external).await {
        Some(status) if status.has_reached(Status::Accepted) && !status.is_final() => {}
        status => {
            load.ledger.courier_not_sent(
                channel,
                &external,
                format!("the platform never had the order accepted and open ({status:?})"),
            );
            return;
        }
    }
    for delivered in [true, false] {
        let started = tokio::time::Instant::now();
        let mut delay = Duration::from_millis(250);
        loop {
            let Some((event, answer)) =
                platforms::courier(&load.sims, channel, &external, delivered).await
            else {
                return;
            };
            let taken = platforms::taken(channel, &answer);
            if taken || started.elapsed() >= GIVE_UP_AFTER {
                load.ledger.courier_sent(channel, &external, event, taken);
                break;
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    }
}
