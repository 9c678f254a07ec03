//! The reconciliation: every order a simulator got a 2xx for, held against what the hub
//! recorded, what the stores received and what was synced back to the platforms; the
//! figures the suite prints, and whether the run passed.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use crossdock_db::Db;

use crate::ledger::Ledger;

/// The figures of a run.
#[derive(Debug, Default, Clone)]
pub struct Report {
    pub offered: usize,
    pub acknowledged: usize,
    /// Offers the platform gave up on (no 2xx in time); the hub may still have taken them.
    pub not_acknowledged: usize,
    /// Acknowledged orders a store received.
    pub delivered_to_stores: usize,
    /// Acknowledged orders rejected back to their platform (no store could take them).
    pub rejected_back: usize,
    /// Acknowledged orders the platform cancelled.
    pub cancelled: usize,
    /// Orders a store received more than once, or that reached two stores at once, or
    /// that the hub recorded twice.
    pub duplicates_at_stores: usize,
    /// Acknowledged orders that neither reached a store nor went back to the platform.
    pub lost: usize,
    /// The same store message delivered again (a redelivery the store recognised).
    pub redelivered_messages: u64,
    pub store_messages: u64,
    /// Orders the stores worked to the end (accept, ready, complete).
    pub completed_by_stores: usize,
    pub statuses_synced: i64,
    pub statuses_skipped: i64,
    pub statuses_parked: i64,
    /// Syncs left neither delivered (or skipped) nor parked.
    pub statuses_pending: i64,
    /// Orders whose statuses reached the platform out of order.
    pub synced_out_of_order: usize,
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
            && self.log_leaks.is_empty()
            && self.acknowledged > 0
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "orders offered               {}", self.offered)?;
        writeln!(f, "  acknowledged               {}", self.acknowledged)?;
        writeln!(f, "  not acknowledged (gave up) {}", self.not_acknowledged)?;
        for (answer, count) in &self.unacknowledged {
            writeln!(f, "  {count:>5} × {answer}")?;
        }
        writeln!(
            f,
            "delivered to stores          {}",
            self.delivered_to_stores
        )?;
        writeln!(
            f,
            "  worked to completion       {}",
            self.completed_by_stores
        )?;
        writeln!(f, "rejected back to platform    {}", self.rejected_back)?;
        writeln!(f, "cancelled by platform        {}", self.cancelled)?;
        writeln!(
            f,
            "duplicates at stores         {}",
            self.duplicates_at_stores
        )?;
        writeln!(f, "lost                         {}", self.lost)?;
        writeln!(
            f,
            "store messages               {} ({} redelivered, recognised by id)",
            self.store_messages, self.redelivered_messages
        )?;
        writeln!(f, "statuses synced              {}", self.statuses_synced)?;
        writeln!(f, "  skipped (no such call)     {}", self.statuses_skipped)?;
        writeln!(f, "statuses parked              {}", self.statuses_parked)?;
        for (why, count) in &self.parked {
            writeln!(f, "  {count:>5} × {why}")?;
        }
        writeln!(f, "statuses left pending       {}", self.statuses_pending)?;
        writeln!(
            f,
            "synced out of order          {}",
            self.synced_out_of_order
        )?;
        writeln!(f, "log lines leaking secrets    {}", self.log_leaks.len())?;
        writeln!(f, "faults:")?;
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
    let at_stores = ledger.at_stores();
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
        let orders = by_external.get(&key).map(Vec::as_slice).unwrap_or(&[]);
        let [order] = orders else {
            if orders.is_empty() {
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
        let holding: Vec<&String> = seen
            .map(|s| {
                s.routed
                    .keys()
                    .filter(|store| !s.withdrawn.contains(*store))
                    .collect()
            })
            .unwrap_or_default();
        let twice_at_one = seen.is_some_and(|s| s.routed.values().any(|n| *n > 1));
        if holding.len() > 1 || twice_at_one {
            report.duplicates_at_stores += 1;
            report.problems.push(format!(
                "duplicate at stores: order {} ({} {external}) reached {:?}",
                order.id,
                offer.channel,
                seen.map(|s| &s.routed)
            ));
        }
        match (holding.is_empty(), order.status.as_str()) {
            (false, _) => {
                report.delivered_to_stores += 1;
                if seen.is_some_and(|s| s.worked.iter().any(|a| a == "complete")) {
                    report.completed_by_stores += 1;
                } else if let Some(why) = seen.and_then(|s| s.gave_up.as_ref()) {
                    report
                        .problems
                        .push(format!("order {} not worked to the end: {why}", order.id));
                }
            }
            (true, "rejected") => report.rejected_back += 1,
            (true, "cancelled") => report.cancelled += 1,
            (true, status) => {
                report.lost += 1;
                report.problems.push(format!(
                    "lost: order {} ({} {external}) is {status} and reached no store",
                    order.id, offer.channel
                ));
            }
        }
    }
    (report.store_messages, report.redelivered_messages) = ledger.message_counts();

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
    Ok(report)
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
