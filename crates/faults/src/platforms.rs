//! The platforms as the suite plays them beyond placing orders: each simulator's API
//! faults (the calls the hub makes to the platform), an order whose first webhook is lost
//! on the way, the platform's cancellation, its view of an order's status, and its
//! courier's events — each in the platform's own way.

use crossdock_adapter_uber_eats::Generation;
use crossdock_channel::sim::{Faults, SampleOrder, WebhookAnswer};
use crossdock_hub::demo::{Offered, Resend, Sims, acknowledged};
use crossdock_model::Status;

/// Channels whose platform cancels orders by webhook (the POS voids its own sales, Google
/// and Dianping send no cancellation).
pub const CANCELLING: [&str; 6] = [
    "own_app",
    "uber_eats",
    "doordash",
    "deliveroo",
    "meituan",
    "eleme",
];

/// Channels whose platform's courier reports an order picked up and delivered.
pub const COURIERS: [&str; 2] = ["doordash", "meituan"];

/// Every simulator's API faults: the calls the hub makes to the platform (status pushes,
/// accept and deny, code redemptions; on Uber Eats the writes, not the order fetch).
pub fn api_faults(sims: &Sims) -> Vec<(&'static str, &Faults)> {
    let mut all: Vec<(&'static str, &Faults)> = Vec::new();
    if let Some(sim) = &sims.own_app {
        all.push(("own_app", sim.faults()));
    }
    if let Some(sim) = &sims.uber_eats {
        all.push(("uber_eats", sim.faults()));
    }
    if let Some(sim) = &sims.doordash {
        all.push(("doordash", sim.faults()));
    }
    if let Some(sim) = &sims.deliveroo {
        all.push(("deliveroo", sim.faults()));
    }
    if let Some(sim) = &sims.meituan {
        all.push(("meituan", sim.faults()));
    }
    if let Some(sim) = &sims.eleme {
        all.push(("eleme", sim.faults()));
    }
    if let Some(sim) = &sims.google {
        all.push(("google", sim.faults()));
    }
    if let Some(sim) = &sims.dianping {
        all.push(("dianping", sim.faults()));
    }
    all
}

/// Places `sample` on the channel's simulator with its first webhook lost on the way (the
/// hub never sees it); [`crossdock_hub::demo::resend`] delivers it. `None` for a channel
/// that cannot.
pub async fn place_lost(
    sims: &Sims,
    channel: &'static str,
    sample: &SampleOrder,
) -> Option<Offered> {
    let (external_order_id, answer, resend) = match channel {
        "own_app" => {
            let placed = sims.own_app.as_ref()?.place_order_lost(sample).await;
            (
                placed.external_order_id.clone(),
                placed.answer.clone(),
                Resend::OwnApp(Box::new(placed)),
            )
        }
        "uber_eats" => {
            let placed = sims
                .uber_eats
                .as_ref()?
                .place_order_lost(sample, Generation::Classic)
                .await;
            (
                placed.external_order_id,
                placed.answer,
                Resend::UberEats {
                    event_id: placed.event_id,
                },
            )
        }
        "doordash" => {
            let placed = sims.doordash.as_ref()?.place_order_lost(sample).await;
            let id = placed.external_order_id;
            (
                id.clone(),
                placed.answer,
                Resend::DoorDash {
                    external_order_id: id,
                },
            )
        }
        "deliveroo" => {
            let placed = sims.deliveroo.as_ref()?.place_order_lost(sample).await;
            (
                placed.external_order_id,
                placed.answer,
                Resend::Deliveroo { guid: placed.guid },
            )
        }
        "meituan" => {
            let placed = sims.meituan.as_ref()?.place_order_lost(sample).await;
            let key = format!("{}:order", placed.order_id);
            (placed.order_id, placed.answer, Resend::Meituan { key })
        }
        "eleme" => {
            let placed = sims.eleme.as_ref()?.place_order_lost(sample).await;
            (
                placed.external_order_id,
                placed.answer,
                Resend::Eleme {
                    request_id: placed.request_id,
                },
            )
        }
        _ => return None,
    };
    Some(Offered {
        channel,
        external_order_id: Some(external_order_id),
        acked: false,
        answer,
        resend,
    })
}

/// Whether the hub took a webhook other than an order (a cancellation, a courier's event)
/// as the platform expects.
pub fn taken(channel: &str, answer: &WebhookAnswer) -> bool {
    acknowledged(channel, answer)
        || (matches!(channel, "own_app" | "doordash") && (200..300).contains(&answer.status))
}

/// The platform cancels the order (the customer did) and tells the hub; the hub's answer.
/// `None`: the platform sends no cancellation (a channel without one, or DoorDash for an
/// order that already failed).
pub async fn cancel(sims: &Sims, channel: &str, external_order_id: &str) -> Option<WebhookAnswer> {
    match channel {
        "own_app" => Some(
            sims.own_app
                .as_ref()?
                .cancel(external_order_id, "customer cancelled")
                .await,
        ),
        "uber_eats" => Some(
            sims.uber_eats
                .as_ref()?
                .cancel_order(external_order_id)
                .await,
        ),
        "doordash" => {
            sims.doordash
                .as_ref()?
                .cancel_order(external_order_id)
                .await
        }
        "deliveroo" => Some(
            sims.deliveroo
                .as_ref()?
                .cancel_order(external_order_id)
                .await,
        ),
        "meituan" => Some(
            sims.meituan
                .as_ref()?
                .cancel_order(external_order_id, "1001", "用户取消")
                .await,
        ),
        "eleme" => Some(sims.eleme.as_ref()?.cancel_order(external_order_id).await),
        _ => None,
    }
}

/// The order's status as the platform knows it (what the hub pushed and the platform
/// took), in the unified model.
pub fn status(sims: &Sims, channel: &str, external_order_id: &str) -> Option<Status> {
    match channel {
        "own_app" => sims.own_app.as_ref()?.order_status(external_order_id),
        "uber_eats" => sims.uber_eats.as_ref()?.order_status(external_order_id),
        "doordash" => sims.doordash.as_ref()?.status(external_order_id),
        "deliveroo" => sims.deliveroo.as_ref()?.unified_status(external_order_id),
        "meituan" => sims.meituan.as_ref()?.unified_status(external_order_id),
        "eleme" => sims.eleme.as_ref()?.order_status(external_order_id),
        _ => None,
    }
}

/// The platform's courier reports the order delivered (`delivered`) or picked up; the
/// event's name and the hub's answer. `None` for a channel without couriers.
pub async fn courier(
    sims: &Sims,
    channel: &str,
    external_order_id: &str,
    delivered: bool,
) -> Option<(&'static str, WebhookAnswer)> {
    match channel {
        "doordash" => {
            let event = if delivered {
                "dropoff"
            } else {
                "dasher_out_for_delivery"
            };
            let answer = sims
                .doordash
                .as_ref()?
                .dasher_status(external_order_id, event)
                .await;
            Some((event, answer))
        }
        "meituan" => {
            let (event, code) = if delivered {
                ("logistics 40 (delivered)", 40)
            } else {
                ("logistics 20 (picked up)", 20)
            };
            let answer = sims
                .meituan
                .as_ref()?
                .logistics(external_order_id, code)
                .await;
            Some((event, answer))
        }
        _ => None,
    }
}
