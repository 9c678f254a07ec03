//! The reconciliation: every order a simulator got a 2xx for, held against what the hub
//! recorded, what the stores received and did, what HQ did, and what was synced back to
//! the platforms; the figures the suite prints, and whether the run passed.
//!
//! Each acknowledged order must end in exactly one of these, and is counted so:
//! - **delivered to a store** and held by exactly one store at the end: worked to
//!   completion (or delivered by the platform's courier), or cancelled by the platform
//!   (the store must have heard so). An order taken back from a store that let it time out
//!   (`order.withdrawn`) and then worked at another is delivered once, to that other one:
//!   counted as *re-routed* (the hub chose the store, the router chose the next) or
//!   *re-assigned by HQ* (the channel named the store), never as a duplicate or a loss;
//! - **rejected back** to its platform (the platform was told): no store could take it
//!   (the router), its platform deadline came near with no store accepting it (the hub's
//!   deadline guard), or HQ found no store for it;
//! - **cancelled** by its platform before it reached a store (a cancellation before the
//!   order arrives must end so, never live at a store).
//!
//! It fails on an order in none of these (lost), one held by two stores or recorded twice
//! (duplicate), statuses synced out of order or left pending, a status that went backwards
//! (a courier's "picked up" after its "delivered"), a retry sooner than the platform's
//! `Retry-After`, an order worked to completion after its cancellation was acknowledged, a
//! cancellation the hub never took, or a leak in the logs.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::time::Duration;

use crossdock_channel::sim::FaultsPlayed;
use crossdock_db::Db;
use crossdock_model::Status;

use crate::ledger::{CancelPlan, HqAction, Ledger, StoreEnd};

/// The figures of a run.
#[derive(Debug, Default, Clone)]
pub struct Report {
    pub offered: usize,
    pub acknowledged: usize,
    /// Offers the platform gave up on (no 2xx in time); the hub may still have taken them.
    pub not_acknowledged: usize,
    /// Acknowledged orders a store received (and holds at the end).
    pub delivered_to_stores: usize,
    /// Orders the stores worked to the end (accept, ready, complete).
    pub completed_by_stores: usize,
    /// Orders the platform's courier delivered (the store found them delivered).
    pub delivered_by_courier: usize,
    /// Orders that reached a store while it was not accepting.
    pub at_stalled_stores: usize,
    /// Orders taken back from a store and worked at another that the router chose.
    pub rerouted: usize,
    /// Orders taken back from a store and given to another by HQ.
    pub reassigned_by_hq: usize,
    /// Acknowledged orders rejected back to their platform, by why.
    pub rejected_back: BTreeMap<String, usize>,
    /// Acknowledged orders the platform cancelled, by when the cancellation came.
    pub cancelled: BTreeMap<String, usize>,
    /// Cancelled orders a store had, and heard were cancelled.
    pub cancelled_at_stores: usize,
    /// Cancellations that came after the order was finished (ignored, as the state
    /// machine says), or that the platform had no reason to send.
    pub cancels_too_late: usize,
    /// Orders whose courier events arrived out of order, by how the order ended.
    pub courier_out_of_order: BTreeMap<String, usize>,
    /// Orders a store received more than once, or that reached two stores at once, or
    /// that the hub recorded twice.
    pub duplicates_at_stores: usize,
    /// Acknowledged orders that neither reached a store nor went back to the platform.
    pub lost: usize,
    /// Cancellations mishandled: never taken, an order worked to completion after its
    /// cancellation was acknowledged, a cancellation before the order that did not end it
    /// cancelled, a cancelled order its store never heard of.
    pub cancel_violations: usize,
    /// Orders whose status moved backwards or changed after a final status.
    pub status_backwards: usize,
    /// The same store message delivered again (a redelivery the store recognised).
    pub redelivered_messages: u64,
    pub store_messages: u64,
    pub statuses_synced: i64,
    pub statuses_skipped: i64,
    pub statuses_parked: i64,
    /// Syncs left neither delivered (or skipped) nor parked.
    pub statuses_pending: i64,
    /// Orders whose statuses reached the platform out of order.
    pub synced_out_of_order: usize,
    /// What the platforms' API faults played: answers by status, calls held past the
    /// hub's timeout.
    pub platform_faults: FaultsPlayed,
    /// Status pushes that failed (and were retried): rate limited with a `Retry-After`,
    /// rate limited without one, other failures.
    pub sync_failures: BTreeMap<&'static str, usize>,
    /// Retries sooner than the platform's `Retry-After` asked.
    pub retry_after_violations: usize,
    /// Offers never acknowledged, by channel and the hub's last answer.
    pub unacknowledged: BTreeMap<String, u32>,
    /// Parked status pushes, by channel, action and reason.
    pub parked: BTreeMap<String, i64>,
    /// Examples of each problem, for the person reading the report.
    pub problems: Vec<String>,
    /// Faults that struck, by name.
    pub faults: BTreeMap<String, u32>,
    /// Hub process starts (1 = never restarted).
    pub process_starts: Vec<(String, u32)>,
    /// Log lines that held a secret or a full phone number.
    pub log_leaks: Vec<String>,
}

impl Report {
    /// The suite's verdict.
    pub fn passed(&self) -> bool {
        self.lost == 0
            && self.duplicates_at_stores == 0
            && self.synced_out_of_order == 0
            && self.statuses_pending == 0
            && self.cancel_violations == 0
            && self.status_backwards == 0
            && self.retry_after_violations == 0
            && self.log_leaks.is_empty()
            && self.acknowledged > 0
    }

    /// Orders rejected back to their platform, whatever the reason.
    pub fn rejected_back_total(&self) -> usize {
        self.rejected_back.values().sum()
    }

    /// Orders cancelled by their platform, whenever the cancellation came.
    pub fn cancelled_total(&self) -> usize {
        self.cancelled.values().sum()
    }
}

fn line(f: &mut fmt::Formatter<'_>, label: &str, value: impl fmt::Display) -> fmt::Result {
    writeln!(f, "{label:<45}{value}")
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        line(f, "orders offered", self.offered)?;
        line(f, "  acknowledged", self.acknowledged)?;
        line(f, "  not acknowledged (gave up)", self.not_acknowledged)?;
        for (answer, count) in &self.unacknowledged {
            writeln!(f, "  {count:>5} × {answer}")?;
        }
        line(f, "delivered to stores", self.delivered_to_stores)?;
        line(f, "  worked to completion", self.completed_by_stores)?;
        line(
            f,
            "  delivered by the platform's courier",
            self.delivered_by_courier,
        )?;
        line(
            f,
            "  reached a store that was not accepting",
            self.at_stalled_stores,
        )?;
        line(f, "  re-routed by the hub to another store", self.rerouted)?;
        line(
            f,
            "  re-assigned by HQ to another store",
            self.reassigned_by_hq,
        )?;
        line(f, "rejected back to platform", self.rejected_back_total())?;
        for (why, count) in &self.rejected_back {
            writeln!(f, "  {count:>5} × {why}")?;
        }
        line(f, "cancelled by platform", self.cancelled_total())?;
        for (when, count) in &self.cancelled {
            writeln!(f, "  {count:>5} × {when}")?;
        }
        line(
            f,
            "  of which a store had (and heard)",
            self.cancelled_at_stores,
        )?;
        line(
            f,
            "  cancellations after the order was done",
            self.cancels_too_late,
        )?;
        line(
            f,
            "courier events out of order",
            self.courier_out_of_order.values().sum::<usize>(),
        )?;
        for (end, count) in &self.courier_out_of_order {
            writeln!(f, "  {count:>5} × {end}")?;
        }
        line(f, "duplicates at stores", self.duplicates_at_stores)?;
        line(f, "lost", self.lost)?;
        line(f, "cancellations mishandled", self.cancel_violations)?;
        line(f, "statuses that went backwards", self.status_backwards)?;
        line(
            f,
            "store messages",
            format!(
                "{} ({} redelivered, recognised by id)",
                self.store_messages, self.redelivered_messages
            ),
        )?;
        let answers: Vec<String> = self
            .platform_faults
            .answers
            .iter()
            .map(|(status, n)| format!("{n} × {status}"))
            .collect();
        line(
            f,
            "platform API fault answers",
            format!(
                "{} + {} held past the hub's timeout",
                if answers.is_empty() {
                    "0".to_owned()
                } else {
                    answers.join(", ")
                },
                self.platform_faults.delayed
            ),
        )?;
        line(
            f,
            "status pushes failed and retried",
            self.sync_failures.values().sum::<usize>(),
        )?;
        for (why, count) in &self.sync_failures {
            writeln!(f, "  {count:>5} × {why}")?;
        }
        line(
            f,
            "  retried before Retry-After",
            self.retry_after_violations,
        )?;
        line(f, "statuses synced", self.statuses_synced)?;
        line(f, "  skipped (no such call)", self.statuses_skipped)?;
        line(f, "statuses parked", self.statuses_parked)?;
        for (why, count) in &self.parked {
            writeln!(f, "  {count:>5} × {why}")?;
        }
        line(f, "statuses left pending", self.statuses_pending)?;
        line(f, "synced out of order", self.synced_out_of_order)?;
        line(f, "log lines leaking secrets", self.log_leaks.len())?;
        writeln!(f, "faults struck:")?;
        for (fault, times) in &self.faults {
            writeln!(f, "  {times:>4} × {fault}")?;
        }
        let starts: Vec<String> = self
            .process_starts
            .iter()
            .map(|(name, starts)| format!("{name} {starts}"))
            .collect();
        writeln!(f, "hub process starts: {}", starts.join(", "))?;
        for problem in self.problems.iter().take(30) {
            writeln!(f, "problem: {problem}")?;
        }
        if self.problems.len() > 30 {
            writeln!(f, "… and {} more problems", self.problems.len() - 30)?;
        }
        for leak in self.log_leaks.iter().take(10) {
            writeln!(f, "leak: {leak}")?;
        }
        write!(
            f,
            "verdict: {}",
            if self.passed() { "PASSED" } else { "FAILED" }
        )
    }
}

/// One hub order as recorded.
struct HubOrder {
    id: String,
    status: String,
}

/// Why the hub rejected an order back, from its `rejected` event: who, and for the router
/// the kind of its reason (the words before the first colon: `too busy`, `closed`, …).
fn rejected_why(source: &str, reason: &str, waited_for_hq: bool) -> String {
    if source == "hq" {
        "by HQ (no store could take it)".to_owned()
    } else if reason.contains("acceptance deadline") || waited_for_hq {
        "platform deadline near, no store had accepted (deadline guard)".to_owned()
    } else {
        let kind: String = reason
            .split(':')
            .next()
            .unwrap_or_default()
            .trim()
            .chars()
            .take(40)
            .collect();
        format!("no store could take it (router: {kind})")
    }
}

/// Reads the hub's records and holds them against the ledger.
pub async fn reconcile(db: &Db, ledger: &Ledger) -> anyhow::Result<Report> {
    let client = db.pool().get().await?;
    let mut by_external: HashMap<(String, String), Vec<HubOrder>> = HashMap::new();
    for row in client
        .query(
            "SELECT id::text, channel, external_order_id, status FROM orders",
            &[],
        )
        .await?
    {
        by_external
            .entry((row.get(1), row.get(2)))
            .or_default()
            .push(HubOrder {
                id: row.get(0),
                status: row.get(3),
            });
    }
    // Why each rejected order was rejected.
    let mut rejections: HashMap<String, String> = HashMap::new();
    for row in client
        .query(
            "SELECT e.order_id::text, e.source, coalesce(e.reason, ''),
                    EXISTS (SELECT 1 FROM order_events a
                            WHERE a.order_id = e.order_id AND a.kind = 'needs_attention')
             FROM order_events e
             WHERE e.kind = 'status_changed' AND e.status = 'rejected'",
            &[],
        )
        .await?
    {
        let (id, source, reason, waited): (String, String, String, bool) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        rejections.insert(id, rejected_why(&source, &reason, waited));
    }
    let tombstones: std::collections::HashSet<(String, String)> = client
        .query("SELECT channel, external_order_id FROM cancellations", &[])
        .await?
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    let at_stores = ledger.at_stores();
    let cancels = ledger.cancels();
    let couriers = ledger.couriers();
    let hq = ledger.hq_actions();
    let mut report = Report::default();
    for offer in ledger.offers() {
        report.offered += 1;
        if !offer.acked {
            report.not_acknowledged += 1;
            *report
                .unacknowledged
                .entry(format!("{}: {}", offer.channel, offer.answer_line()))
                .or_default() += 1;
            continue;
        }
        report.acknowledged += 1;
        let Some(external) = &offer.external_order_id else {
            report.lost += 1;
            report.problems.push(format!(
                "{}: acknowledged without an order id",
                offer.channel
            ));
            continue;
        };
        let key = (offer.channel.to_owned(), external.clone());
        let cancel = cancels.get(&key);
        let orders = by_external.get(&key).map(Vec::as_slice).unwrap_or(&[]);
        let [order] = orders else {
            if orders.is_empty() {
                if cancel.is_some() && tombstones.contains(&key) {
                    // The platform cancelled it before the hub could take it: the hub
                    // keeps the cancellation and took no order.
                    *report
                        .cancelled
                        .entry("before the hub took the order (tombstone kept)".into())
                        .or_default() += 1;
                    continue;
                }
                report.lost += 1;
                report.problems.push(format!(
                    "lost: {} order {external} was acknowledged but the hub has no record of it",
                    offer.channel
                ));
            } else {
                report.duplicates_at_stores += 1;
                report.problems.push(format!(
                    "duplicate: {} order {external} is recorded {} times",
                    offer.channel,
                    orders.len()
                ));
            }
            continue;
        };
        let seen = at_stores.get(&order.id);
        let holding: Vec<&String> = seen.map(|s| s.holding()).unwrap_or_default();
        let routed_to = seen.map_or(0, |s| s.routed().count());
        let twice_at_one = seen.is_some_and(|s| s.routed().any(|(_, at)| at.routed > 1));
        if holding.len() > 1 || twice_at_one {
            report.duplicates_at_stores += 1;
            report.problems.push(format!(
                "duplicate at stores: order {} ({} {external}) reached {:?}",
                order.id,
                offer.channel,
                seen.map(|s| s
                    .routed()
                    .map(|(store, at)| (store, at.routed))
                    .collect::<Vec<_>>())
            ));
        }
        if seen.is_some_and(|s| s.stores.values().any(|at| at.while_stalled)) {
            report.at_stalled_stores += 1;
        }
        if routed_to > 1 {
            let by_hq = hq
                .get(&order.id)
                .is_some_and(|actions| actions.iter().any(|a| matches!(a, HqAction::Assigned(_))));
            if by_hq {
                report.reassigned_by_hq += 1;
            } else {
                report.rerouted += 1;
            }
        }
        let status = Status::parse(&order.status);
        let cancelled_when = cancel.map_or("by the platform, unplanned", |c| c.plan.fault());
        let rejected_why = rejections
            .get(&order.id)
            .cloned()
            .unwrap_or_else(|| "no store could take it (router)".to_owned());
        match (holding.first(), status) {
            (Some(store), Some(ended @ (Status::Cancelled | Status::Rejected))) => {
                // Ended by the platform or the hub while a store had it: the store must
                // have heard so.
                report.delivered_to_stores += 1;
                if ended == Status::Cancelled {
                    *report
                        .cancelled
                        .entry(cancelled_when.to_owned())
                        .or_default() += 1;
                } else {
                    *report
                        .rejected_back
                        .entry(rejected_why.clone())
                        .or_default() += 1;
                }
                let at = seen.and_then(|s| s.stores.get(*store));
                let heard = at.is_some_and(|at| {
                    at.told.contains(&format!("order.{ended}"))
                        || matches!(&at.end, Some(StoreEnd::EndedByHub { status, .. }) if *status == ended.as_str())
                });
                if ended == Status::Cancelled && heard {
                    report.cancelled_at_stores += 1;
                } else if !heard {
                    report.cancel_violations += usize::from(ended == Status::Cancelled);
                    report.problems.push(format!(
                        "order {} ({} {external}) was {ended} but store {store} never heard so",
                        order.id, offer.channel
                    ));
                }
            }
            (Some(store), _) => {
                report.delivered_to_stores += 1;
                let at = seen.and_then(|s| s.stores.get(*store));
                match at.and_then(|at| at.end.as_ref()) {
                    Some(StoreEnd::Completed) if status == Some(Status::Delivered) => {
                        report.delivered_by_courier += 1;
                    }
                    Some(StoreEnd::Completed) => report.completed_by_stores += 1,
                    Some(other) => report.problems.push(format!(
                        "order {} ({} {external}) not worked to the end at {store}: {other:?} (hub: {})",
                        order.id, offer.channel, order.status
                    )),
                    None => report.problems.push(format!(
                        "order {} ({} {external}) still being worked at {store} (hub: {})",
                        order.id, offer.channel, order.status
                    )),
                }
                if !status.is_some_and(|s| s.is_final()) {
                    report.lost += 1;
                    report.problems.push(format!(
                        "lost: order {} ({} {external}) is {} at {store}",
                        order.id, offer.channel, order.status
                    ));
                }
            }
            (None, Some(Status::Rejected)) => {
                *report.rejected_back.entry(rejected_why).or_default() += 1;
            }
            (None, Some(Status::Cancelled)) => {
                *report
                    .cancelled
                    .entry(cancelled_when.to_owned())
                    .or_default() += 1;
            }
            (None, _) => {
                report.lost += 1;
                report.problems.push(format!(
                    "lost: order {} ({} {external}) is {} and reached no store",
                    order.id, offer.channel, order.status
                ));
            }
        }
        if let Some(cancel) = cancel {
            check_cancel(
                &mut report,
                cancel,
                order,
                status,
                seen,
                offer.channel,
                external,
            );
        }
        if let Some(courier) = couriers.get(&key)
            && courier.sent.len() == 2
        {
            let end = format!("ended {}", order.status);
            *report.courier_out_of_order.entry(end).or_default() += 1;
            if !matches!(
                status,
                Some(Status::Delivered | Status::Completed | Status::Cancelled)
            ) {
                report.status_backwards += 1;
                report.problems.push(format!(
                    "order {} ({} {external}): courier's delivered then picked up left it {}",
                    order.id, offer.channel, order.status
                ));
            }
        }
    }
    (report.store_messages, report.redelivered_messages) = ledger.message_counts();
    drop(client);
    check_backwards(db, &mut report).await?;
    check_syncs(db, &mut report).await?;
    Ok(report)
}

/// Holds one planned cancellation against what became of its order.
fn check_cancel(
    report: &mut Report,
    cancel: &crate::ledger::CancelRecord,
    order: &HubOrder,
    status: Option<Status>,
    seen: Option<&crate::ledger::AtStores>,
    channel: &str,
    external: &str,
) {
    let violation = |report: &mut Report, why: String| {
        report.cancel_violations += 1;
        report.problems.push(format!(
            "cancellation ({}) of {channel} {external} (order {}): {why}",
            cancel.plan.fault(),
            order.id
        ));
    };
    let Some(acked_at) = cancel.acked_at else {
        if let Some(why) = &cancel.not_sent {
            report.cancels_too_late += 1;
            tracing::debug!(channel, external, why, "Cancellation not sent.");
        } else {
            violation(
                report,
                format!("never acknowledged: {:?}", cancel.refused.first()),
            );
        }
        return;
    };
    let routed = seen.is_some_and(|s| s.routed().count() > 0);
    match status {
        Some(Status::Cancelled) => {
            if cancel.plan == CancelPlan::BeforeTheOrder && routed {
                violation(
                    report,
                    "cancelled before the order arrived, yet the order reached a store".into(),
                );
            }
        }
        Some(Status::Completed | Status::Delivered) => {
            if matches!(
                cancel.plan,
                CancelPlan::BeforeTheOrder | CancelPlan::WithTheOrder
            ) {
                violation(
                    report,
                    format!("the order went live and ended {}", order.status),
                );
            } else if seen
                .and_then(|s| s.completed_at())
                .is_some_and(|completed| completed > acked_at)
            {
                violation(
                    report,
                    "the store completed it after the cancellation was acknowledged".into(),
                );
            } else {
                report.cancels_too_late += 1;
            }
        }
        Some(Status::Rejected) => report.cancels_too_late += 1,
        other => violation(report, format!("the order ended {other:?}")),
    }
}

/// Orders whose recorded statuses moved backwards or changed after a final one.
async fn check_backwards(db: &Db, report: &mut Report) -> anyhow::Result<()> {
    let client = db.pool().get().await?;
    let rows = client
        .query(
            "SELECT order_id::text, status FROM order_events
             WHERE kind = 'status_changed' AND status IS NOT NULL ORDER BY order_id, id",
            &[],
        )
        .await?;
    let mut current: Option<(String, Status)> = None;
    let mut flagged: Option<String> = None;
    for row in rows {
        let (id, status): (String, String) = (row.get(0), row.get(1));
        let Some(status) = Status::parse(&status) else {
            continue;
        };
        if let Some((previous_id, previous)) = &current
            && *previous_id == id
            && flagged.as_deref() != Some(id.as_str())
        {
            let off_path_end = status.is_final() && !status.has_reached(Status::Received);
            let forward = !previous.is_final() && (off_path_end || status.has_reached(*previous));
            if !forward {
                report.status_backwards += 1;
                report.problems.push(format!(
                    "order {id}: status went from {previous} to {status}"
                ));
                flagged = Some(id.clone());
            }
        }
        current = Some((id, status));
    }
    Ok(())
}

/// The status syncs: how they ended, the failures retried, and whether each retry after a
/// `Retry-After` waited for it.
async fn check_syncs(db: &Db, report: &mut Report) -> anyhow::Result<()> {
    let client = db.pool().get().await?;
    for row in client
        .query(
            "SELECT state, count(*) FROM status_syncs GROUP BY state",
            &[],
        )
        .await?
    {
        let count: i64 = row.get(1);
        match row.get::<_, String>(0).as_str() {
            "delivered" => report.statuses_synced = count,
            "skipped" => report.statuses_skipped = count,
            "parked" => report.statuses_parked = count,
            _ => report.statuses_pending += count,
        }
    }
    for row in client
        .query(
            "SELECT o.channel || ' ' || (s.action->>'action') || ': ' || left(coalesce(s.last_error, ''), 120),
                    count(*)
             FROM status_syncs s JOIN orders o ON o.id = s.order_id
             WHERE s.state = 'parked' GROUP BY 1 ORDER BY 2 DESC LIMIT 20",
            &[],
        )
        .await?
    {
        report.parked.insert(row.get(0), row.get(1));
    }
    // A later status reported before an earlier one: compare the order in which each
    // order's pushes were settled with the order of their events.
    for row in client
        .query(
            "SELECT order_id::text FROM (
                 SELECT order_id, event_id, updated_at,
                        lag(updated_at) OVER (PARTITION BY order_id ORDER BY event_id) AS before
                 FROM status_syncs WHERE state = 'delivered') pushes
             WHERE before > updated_at
             GROUP BY order_id",
            &[],
        )
        .await?
    {
        report.synced_out_of_order += 1;
        let id: String = row.get(0);
        report
            .problems
            .push(format!("order {id}: statuses delivered out of order"));
    }
    if report.statuses_pending > 0 {
        for row in client
            .query(
                "SELECT order_id::text, action::text, attempts, coalesce(last_error, '')
                 FROM status_syncs WHERE state = 'pending' LIMIT 10",
                &[],
            )
            .await?
        {
            let (id, action, attempts, error): (String, String, i32, String) =
                (row.get(0), row.get(1), row.get(2), row.get(3));
            report.problems.push(format!(
                "order {id}: sync {action} still pending after {attempts} attempts ({error})"
            ));
        }
    }
    // Every failed push, and when the same push was tried next.
    for row in client
        .query(
            "SELECT order_id::text, reason, extract(epoch FROM next_at - at)::float8 FROM (
                 SELECT order_id, kind, coalesce(reason, '') AS reason, at,
                        lead(at) OVER (PARTITION BY order_id, data->'action' ORDER BY id) AS next_at
                 FROM order_events
                 WHERE kind IN ('sync_failed', 'sync_delivered', 'sync_skipped', 'sync_parked')
             ) pushes WHERE kind = 'sync_failed'",
            &[],
        )
        .await?
    {
        let (id, reason, gap): (String, String, Option<f64>) = (row.get(0), row.get(1), row.get(2));
        let asked = retry_after(&reason);
        let kind = match (reason.contains("rate limited"), asked) {
            (true, Some(_)) => "rate limited, with Retry-After",
            (true, None) => "rate limited, without Retry-After",
            (false, _) if reason.contains("transport") => "no answer in time (transport)",
            (false, _) => "platform error",
        };
        *report.sync_failures.entry(kind).or_default() += 1;
        if let (Some(asked), Some(gap)) = (asked, gap)
            && gap + 0.25 < asked.as_secs_f64()
        {
            report.retry_after_violations += 1;
            report.problems.push(format!(
                "order {id}: retried {gap:.2} s after a 429 that asked for {asked:?}"
            ));
        }
    }
    Ok(())
}

/// The `Retry-After` a failed push's error names (`… (retry after Some(2s))`).
fn retry_after(reason: &str) -> Option<Duration> {
    let rest = reason.split("retry after Some(").nth(1)?;
    let text = rest.split(')').next()?;
    let seconds = if let Some(ms) = text.strip_suffix("ms") {
        ms.parse::<f64>().ok()? / 1000.0
    } else {
        text.strip_suffix('s')?.parse::<f64>().ok()?
    };
    Some(Duration::from_secs_f64(seconds))
}

/// Whether the pipeline is still busy: orders not yet finished, syncs pending, outbox rows.
pub async fn busy(db: &Db) -> anyhow::Result<(i64, i64, i64)> {
    let client = db.pool().get().await?;
    let row = client
        .query_one(
            "SELECT
                 (SELECT count(*) FROM orders
                   WHERE status NOT IN ('completed', 'delivered', 'rejected', 'cancelled', 'failed')),
                 (SELECT count(*) FROM status_syncs WHERE state = 'pending'),
                 (SELECT count(*) FROM outbox WHERE refused_at IS NULL)",
            &[],
        )
        .await?;
    Ok((row.get(0), row.get(1), row.get(2)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_read_from_the_push_error() {
        assert_eq!(
            retry_after("attempt 3: rate limited by the platform (retry after Some(2s))"),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            retry_after("rate limited by the platform (retry after Some(1.5s))"),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            retry_after("rate limited by the platform (retry after None)"),
            None
        );
        assert_eq!(retry_after("platform answered 500: x"), None);
    }

    #[test]
    fn rejections_are_told_apart() {
        assert_eq!(
            rejected_why("hq", "no store can take the order now", false),
            "by HQ (no store could take it)"
        );
        assert!(rejected_why("router", "x", true).starts_with("platform deadline"));
        assert!(
            rejected_why(
                "router",
                "timed out: not accepted before the platform's acceptance deadline",
                false
            )
            .starts_with("platform deadline")
        );
        assert_eq!(
            rejected_why("router", "too busy: NYC-001 has 30 of 30", false),
            "no store could take it (router: too busy)"
        );
    }
}
