//! HQ as the suite plays it: an agent with the admin token that reads HQ's attention list
//! (`GET /api/v1/attention`) every second and settles each order a store the channel
//! named declined or let time out, as a person at HQ would: it gives the order to another
//! store of the same city that is open and online (`POST /api/v1/orders/{id}/assign`; the
//! hub refuses a store that cannot take it, and the agent tries the next), or, when none
//! can, rejects it back to the platform (`POST /api/v1/orders/{id}/reject`). An order
//! whose platform deadline is less than [`LEAVE_TO_DEADLINE`] away is left alone: no store
//! would accept it in time, and the hub's deadline guard rejects it before the platform's
//! deadline. Each action goes into the ledger for the reconciliation.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use crossdock_model::StoreProfile;
use crossdock_router::OpeningHours;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::watch;

use crate::ledger::{HqAction, Ledger};
use crate::stores::Stores;

/// An order whose platform deadline is nearer than this is left to the deadline guard.
pub const LEAVE_TO_DEADLINE: chrono::TimeDelta = chrono::TimeDelta::seconds(90);

/// How often HQ looks at its attention list.
const EVERY: Duration = Duration::from_secs(1);

/// What HQ needs: the API, the admin token, the chain, the stores (to know which are
/// offline) and the record.
pub struct Hq {
    pub api: String,
    pub admin_token: String,
    pub http: reqwest::Client,
    pub ledger: Arc<Ledger>,
    pub stores: Arc<Stores>,
    /// The chain's stores with their opening hours.
    chain: Vec<(StoreProfile, Option<OpeningHours>)>,
}

impl Hq {
    pub fn new(
        api: String,
        admin_token: String,
        http: reqwest::Client,
        ledger: Arc<Ledger>,
        stores: Arc<Stores>,
        chain: &[StoreProfile],
    ) -> Hq {
        let chain = chain
            .iter()
            .map(|s| {
                let hours = OpeningHours::compile(&s.timezone, &s.hours, &s.closed_on).ok();
                (s.clone(), hours)
            })
            .collect();
        Hq {
            api,
            admin_token,
            http,
            ledger,
            stores,
            chain,
        }
    }

    /// Stores HQ could give an order to: the city of the store it was at, open now,
    /// online, and not among those that declined it; rotated by `turn`.
    fn candidates(&self, declined: &[String], turn: usize) -> Vec<String> {
        let Some(city) = declined
            .first()
            .and_then(|id| self.chain.iter().find(|(s, _)| s.id.as_str() == id))
            .map(|(s, _)| s.city.clone())
        else {
            return Vec::new();
        };
        let now = Utc::now();
        let mut stores: Vec<String> = self
            .chain
            .iter()
            .filter(|(s, hours)| {
                s.city == city
                    && !declined.iter().any(|d| d == s.id.as_str())
                    && hours.as_ref().is_some_and(|h| h.is_open(now))
                    && self.stores.stalled_until(s.id.as_str()).is_none()
            })
            .map(|(s, _)| s.id.to_string())
            .collect();
        if !stores.is_empty() {
            let len = stores.len();
            stores.rotate_left(turn % len);
        }
        stores
    }
}

#[derive(Deserialize)]
struct AttentionList {
    orders: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    kind: String,
    #[serde(default)]
    declined_by: Vec<String>,
    accept_by: Option<DateTime<Utc>>,
    order: EntryOrder,
}

#[derive(Deserialize)]
struct EntryOrder {
    id: String,
}

#[derive(Deserialize, Default)]
struct ApiError {
    #[serde(default)]
    error: String,
    #[serde(default)]
    message: String,
}

/// Settles HQ's attention list every second until `stop`.
pub async fn run(hq: Arc<Hq>, mut stop: watch::Receiver<bool>) {
    let mut left: HashSet<String> = HashSet::new();
    let mut turn = 0usize;
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(EVERY) => {}
        }
        if *stop.borrow() {
            return;
        }
        let Some(list) = attention(&hq).await else {
            continue;
        };
        for entry in list.orders {
            if !matches!(entry.kind.as_str(), "declined" | "timed_out") {
                continue;
            }
            let id = entry.order.id.clone();
            if entry
                .accept_by
                .is_some_and(|by| by - Utc::now() < LEAVE_TO_DEADLINE)
            {
                if left.insert(id.clone()) {
                    hq.ledger.hq(&id, HqAction::LeftToDeadline);
                }
                continue;
            }
            turn += 1;
            settle(&hq, &id, &entry.declined_by, turn).await;
        }
    }
}

async fn attention(hq: &Hq) -> Option<AttentionList> {
    let url = format!("{}/api/v1/attention?limit=200", hq.api);
    crate::api_get(&hq.http, url, &hq.admin_token).await
}

/// What HQ's request came to.
enum Answer {
    Done,
    /// 409: the hub refused, with its error code and message.
    Refused(ApiError),
    /// Anything else (the API down, …): try again on the next look.
    Later,
}

async fn post(hq: &Hq, path: String, body: serde_json::Value) -> Answer {
    let sent = hq
        .http
        .post(format!("{}/api/v1/orders/{path}", hq.api))
        .bearer_auth(&hq.admin_token)
        .json(&body)
        .timeout(Duration::from_secs(10))
        .send()
        .await;
    match sent {
        Ok(response) if response.status().is_success() => Answer::Done,
        Ok(response) if response.status().as_u16() == 409 => {
            Answer::Refused(response.json().await.unwrap_or_default())
        }
        _ => Answer::Later,
    }
}

/// Gives the order to the first candidate store that takes it, or rejects it back to its
/// platform when none does.
async fn settle(hq: &Hq, id: &str, declined: &[String], turn: usize) {
    for store in hq.candidates(declined, turn) {
        match post(hq, format!("{id}/assign"), json!({ "store": store })).await {
            Answer::Done => {
                tracing::info!(order_id = id, %store, "HQ gave the order to another store.");
                hq.ledger.hq(id, HqAction::Assigned(store));
                return;
            }
            // This store cannot take it (closed, paused, full): the next one.
            Answer::Refused(refusal) if refusal.error == "store_cannot_take" => {}
            Answer::Refused(refusal) if refusal.message.contains("too busy") => {}
            // The order moved on (accepted, cancelled) or its deadline is too near: the
            // hub settles it.
            Answer::Refused(_) => return,
            Answer::Later => return,
        }
    }
    let reason = json!({ "reason": "no store can take the order now" });
    match post(hq, format!("{id}/reject"), reason).await {
        Answer::Done => {
            tracing::info!(order_id = id, "HQ rejected the order back to its platform.");
            hq.ledger.hq(id, HqAction::Rejected);
        }
        Answer::Refused(_) | Answer::Later => {}
    }
}
