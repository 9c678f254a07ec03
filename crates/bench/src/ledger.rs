//! What the run saw from the outside, as it happened: each order offered by its platform
//! and the hub's answer, each order's arrival at its store and the store's accept, and
//! each accept the platform heard. At the end of a step it is joined with the hub's own
//! record of the step's orders ([`HubOrder`]) into the step's figures and checks.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;
use uuid::Uuid;

use crate::stats::{Latency, Samples};

/// One order a platform offered.
#[derive(Debug, Clone)]
pub struct Offer {
    pub step: usize,
    pub channel: &'static str,
    pub external_order_id: Option<String>,
    /// When the platform sent its first request.
    pub sent: Instant,
    /// When the hub answered the first request.
    pub answered: Instant,
    /// The hub acknowledged it (at the first request or a retry).
    pub acked: bool,
    /// Requests it took (1: acknowledged at once).
    pub attempts: u32,
}

/// One order at its store.
#[derive(Debug, Clone)]
struct AtStore {
    stores: HashSet<String>,
    /// When the first "routed" message reached the store.
    received: Instant,
    /// Distinct "routed" messages (a second one would be a duplicate hand-over; the same
    /// one delivered again is the broker's at-least-once, and harmless).
    routed_messages: HashSet<String>,
    accept_sent: Option<Instant>,
    /// When the hub answered the accept, and with what.
    accept_answered: Option<(Instant, u16)>,
}

#[derive(Default)]
struct Inner {
    offers: Vec<Offer>,
    /// Offers the hub acknowledged.
    acked: usize,
    at_store: HashMap<Uuid, AtStore>,
    /// When the platform heard the accept, by channel and platform order id.
    heard: HashMap<(String, String), Instant>,
    accepts_in_flight: u64,
}

/// The run's record; shared by the platforms, the stores and the feeds.
#[derive(Default)]
pub struct Ledger {
    inner: Mutex<Inner>,
}

/// The hub's record of one order of a step (read from its database).
#[derive(Debug, Clone)]
pub struct HubOrder {
    pub id: Uuid,
    pub channel: String,
    pub external_order_id: String,
    pub status: String,
    /// The state of the sync of its accept (`None`: no accept recorded).
    pub accept_sync: Option<String>,
    /// Times the hub's store worker handed it over (`None`: never).
    pub handovers: Option<i32>,
}

/// What a step came to.
#[derive(Debug, Clone, Serialize)]
pub struct StepFigures {
    pub offered: usize,
    pub acked: usize,
    /// Acknowledged only after the platform retried.
    pub acked_on_retry: usize,
    /// Never acknowledged.
    pub not_acked: usize,
    /// Acknowledged orders whose whole loop completed: at the store, accepted, the accept
    /// heard by the platform (or, where the platform has no such call, recorded so).
    pub completed: usize,
    /// Completed orders a second, from the first offer to the last completion.
    pub completed_per_second: f64,
    /// Offers a second the platforms managed to send.
    pub offered_per_second: f64,
    pub webhook_ack: Latency,
    /// From the platform sending the order until the store has it.
    pub ingest_to_store: Latency,
    /// From the store sending its accept until the platform has it.
    pub accept_to_platform: Latency,
    /// From the platform sending the order until it hears the accept.
    pub whole_loop: Latency,
    /// Everything that makes the step void: losses, duplicates, orders stuck.
    pub faults: Vec<String>,
}

impl Ledger {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn offered(&self, offer: Offer) {
        let mut inner = self.lock();
        inner.acked += usize::from(offer.acked);
        inner.offers.push(offer);
    }

    /// A "routed" message reached `store`: `true` the first time for the order (the store
    /// accepts it then).
    pub fn at_store(&self, order_id: Uuid, store: &str, message_id: &str) -> bool {
        let mut inner = self.lock();
        let at = inner.at_store.entry(order_id).or_insert_with(|| AtStore {
            stores: HashSet::new(),
            received: Instant::now(),
            routed_messages: HashSet::new(),
            accept_sent: None,
            accept_answered: None,
        });
        at.stores.insert(store.to_owned());
        if !at.routed_messages.insert(message_id.to_owned()) || at.accept_sent.is_some() {
            return false;
        }
        at.accept_sent = Some(Instant::now());
        inner.accepts_in_flight += 1;
        true
    }

    /// Orders at stores so far, and accepts still waiting for the hub's answer.
    pub fn store_counts(&self) -> (usize, u64) {
        let inner = self.lock();
        (inner.at_store.len(), inner.accepts_in_flight)
    }

    pub fn accepted(&self, order_id: Uuid, status: u16) {
        let mut inner = self.lock();
        inner.accepts_in_flight = inner.accepts_in_flight.saturating_sub(1);
        if let Some(at) = inner.at_store.get_mut(&order_id) {
            at.accept_answered = Some((Instant::now(), status));
        }
    }

    /// The platform of `channel` heard the store's accept of its order (a simulator's
    /// feed tells each change of status once: a push repeated is not heard again).
    pub fn heard(&self, channel: &str, external_order_id: &str, at: Instant) {
        self.lock()
            .heard
            .insert((channel.to_owned(), external_order_id.to_owned()), at);
    }

    /// Acknowledged offers so far.
    pub fn acked(&self) -> usize {
        self.lock().acked
    }

    /// The step's figures, its offers (those sent within `window`, if given) joined with
    /// the hub's record of its orders.
    pub fn figures(
        &self,
        step: usize,
        window: Option<(Instant, Instant)>,
        hub: &[HubOrder],
    ) -> StepFigures {
        let inner = self.lock();
        let offers: Vec<&Offer> = inner
            .offers
            .iter()
            .filter(|o| o.step == step)
            .filter(|o| window.is_none_or(|(from, to)| o.sent >= from && o.sent < to))
            .collect();
        let by_key: HashMap<(&str, &str), &HubOrder> = hub
            .iter()
            .map(|o| ((o.channel.as_str(), o.external_order_id.as_str()), o))
            .collect();
        let mut faults = Vec::new();
        let mut webhook_ack = Samples::default();
        let mut ingest_to_store = Samples::default();
        let mut accept_to_platform = Samples::default();
        let mut whole_loop = Samples::default();
        let (mut acked, mut acked_on_retry, mut completed) = (0, 0, 0);
        let mut last_completion: Option<Instant> = None;
        let first_sent = offers.iter().map(|o| o.sent).min();
        let last_sent = offers.iter().map(|o| o.sent).max();
        let mut fault = |what: String| {
            if faults.len() < 20 {
                faults.push(what);
            }
        };
        let mut fault_count = 0usize;
        for offer in &offers {
            if !offer.acked {
                continue;
            }
            acked += 1;
            if offer.attempts > 1 {
                acked_on_retry += 1;
            } else {
                webhook_ack.push(offer.answered - offer.sent);
            }
            let Some(external) = offer.external_order_id.as_deref() else {
                fault_count += 1;
                fault(format!(
                    "{}: acknowledged without an order id",
                    offer.channel
                ));
                continue;
            };
            let Some(order) = by_key.get(&(offer.channel, external)) else {
                fault_count += 1;
                fault(format!(
                    "{} {external}: acknowledged, not in the hub (lost)",
                    offer.channel
                ));
                continue;
            };
            let Some(at) = inner.at_store.get(&order.id) else {
                fault_count += 1;
                fault(format!(
                    "{} {external}: never reached a store (status {})",
                    offer.channel, order.status
                ));
                continue;
            };
            if at.stores.len() > 1 || at.routed_messages.len() > 1 {
                fault_count += 1;
                fault(format!(
                    "{} {external}: reached a store more than once ({} stores, {} messages)",
                    offer.channel,
                    at.stores.len(),
                    at.routed_messages.len()
                ));
            }
            if order.handovers != Some(1) {
                fault_count += 1;
                fault(format!(
                    "{} {external}: handed over {:?} times by the hub's store worker",
                    offer.channel, order.handovers
                ));
            }
            ingest_to_store.push(at.received.saturating_duration_since(offer.sent));
            let (Some(accept_sent), Some((answered, status))) =
                (at.accept_sent, at.accept_answered)
            else {
                fault_count += 1;
                fault(format!(
                    "{} {external}: the store's accept never ended",
                    offer.channel
                ));
                continue;
            };
            if !(200..300).contains(&status) {
                fault_count += 1;
                fault(format!(
                    "{} {external}: the store's accept answered {status}",
                    offer.channel
                ));
                continue;
            }
            let heard = inner
                .heard
                .get(&(offer.channel.to_owned(), external.to_owned()))
                .copied();
            let end = match (order.accept_sync.as_deref(), heard) {
                (Some("delivered"), Some(heard)) => {
                    accept_to_platform.push(heard.saturating_duration_since(accept_sent));
                    heard
                }
                (Some("skipped"), _) => answered,
                (state, heard) => {
                    fault_count += 1;
                    fault(format!(
                        "{} {external}: accept sync {state:?}, heard by the platform: {}",
                        offer.channel,
                        heard.is_some()
                    ));
                    continue;
                }
            };
            completed += 1;
            whole_loop.push(end.saturating_duration_since(offer.sent));
            last_completion = Some(last_completion.map_or(end, |last| last.max(end)));
        }
        if fault_count > faults.len() {
            faults.push(format!("… {} in all", fault_count));
        }
        let span = |from: Option<Instant>, to: Option<Instant>| match (from, to) {
            (Some(from), Some(to)) => to.saturating_duration_since(from),
            _ => Duration::ZERO,
        };
        let per_second = |n: usize, over: Duration| {
            if over.is_zero() {
                0.0
            } else {
                n as f64 / over.as_secs_f64()
            }
        };
        StepFigures {
            offered: offers.len(),
            acked,
            acked_on_retry,
            not_acked: offers.len() - acked,
            completed,
            completed_per_second: per_second(completed, span(first_sent, last_completion)),
            offered_per_second: per_second(offers.len(), span(first_sent, last_sent)),
            webhook_ack: webhook_ack.summary(),
            ingest_to_store: ingest_to_store.summary(),
            accept_to_platform: accept_to_platform.summary(),
            whole_loop: whole_loop.summary(),
            faults,
        }
    }
}
