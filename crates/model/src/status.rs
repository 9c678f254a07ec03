//! The status state machine.
//!
//! ```text
//! received ─accept─▶ accepted ─▶ preparing ─▶ ready ─▶ picked_up ─▶ delivered / completed
//!    │                  │  (forward skips allowed once accepted; never backwards)
//!    ├─reject─▶ rejected └──────────────▶ cancelled / failed (from any non-final state)
//!    └─────────────────────────────────▶ cancelled / failed
//! ```
//!
//! `delivered`, `completed`, `rejected`, `cancelled` and `failed` are final. Every status
//! change in the hub, whoever asks for it, goes through [`Status::transition`].

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::order::FulfillmentKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Received,
    Accepted,
    Preparing,
    Ready,
    PickedUp,
    Delivered,
    Completed,
    Rejected,
    Cancelled,
    Failed,
}

impl Status {
    pub const ALL: [Status; 10] = [
        Status::Received,
        Status::Accepted,
        Status::Preparing,
        Status::Ready,
        Status::PickedUp,
        Status::Delivered,
        Status::Completed,
        Status::Rejected,
        Status::Cancelled,
        Status::Failed,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Received => "received",
            Status::Accepted => "accepted",
            Status::Preparing => "preparing",
            Status::Ready => "ready",
            Status::PickedUp => "picked_up",
            Status::Delivered => "delivered",
            Status::Completed => "completed",
            Status::Rejected => "rejected",
            Status::Cancelled => "cancelled",
            Status::Failed => "failed",
        }
    }

    pub fn parse(value: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|s| s.as_str() == value)
    }

    /// A final status admits no further change.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            Status::Delivered
                | Status::Completed
                | Status::Rejected
                | Status::Cancelled
                | Status::Failed
        )
    }

    /// Whether an order in this status takes a place in its store's kitchen, counting
    /// against the store's capacity: from assignment until it is ready. (The database's
    /// `occupies_kitchen` says the same; a test pins them together.)
    pub fn occupies_kitchen(&self) -> bool {
        matches!(
            self,
            Status::Received | Status::Accepted | Status::Preparing
        )
    }

    /// Whether an order in this status has come as far as `step` on the forward path
    /// (`received → accepted → preparing → ready → picked_up → delivered/completed`); never
    /// for the off-path endings.
    pub fn has_reached(&self, step: Status) -> bool {
        matches!((self.progress(), step.progress()), (Some(at), Some(step)) if at >= step)
    }

    /// Position on the forward path; `None` for the off-path endings.
    fn progress(&self) -> Option<u8> {
        match self {
            Status::Received => Some(0),
            Status::Accepted => Some(1),
            Status::Preparing => Some(2),
            Status::Ready => Some(3),
            Status::PickedUp => Some(4),
            Status::Delivered | Status::Completed => Some(5),
            Status::Rejected | Status::Cancelled | Status::Failed => None,
        }
    }

    /// Checks that an order of `fulfillment` kind may move from `self` to `to`.
    pub fn transition(
        self,
        to: Status,
        fulfillment: FulfillmentKind,
    ) -> Result<Status, TransitionError> {
        let refuse = |why: Refusal| {
            Err(TransitionError {
                from: self,
                to,
                why,
            })
        };
        if self == to {
            return refuse(Refusal::Unchanged);
        }
        if self.is_final() {
            return refuse(Refusal::AlreadyFinal);
        }
        match to {
            Status::Cancelled | Status::Failed => return Ok(to),
            Status::Rejected if self == Status::Received => return Ok(to),
            Status::Rejected => return refuse(Refusal::RejectAfterAccept),
            Status::Received => return refuse(Refusal::Backwards),
            _ => {}
        }
        if self == Status::Received && to != Status::Accepted {
            return refuse(Refusal::NotAccepted);
        }
        if to == Status::Delivered && fulfillment != FulfillmentKind::Delivery {
            return refuse(Refusal::NotADelivery);
        }
        if to == Status::PickedUp && fulfillment == FulfillmentKind::DineIn {
            return refuse(Refusal::DineInNotPickedUp);
        }
        match (self.progress(), to.progress()) {
            (Some(from), Some(next)) if next > from => Ok(to),
            _ => refuse(Refusal::Backwards),
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a transition is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Unchanged,
    AlreadyFinal,
    Backwards,
    NotAccepted,
    RejectAfterAccept,
    NotADelivery,
    DineInNotPickedUp,
}

/// A refused status change, with a message a person can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cannot move an order from `{from}` to `{to}`: {}", self.explain())]
pub struct TransitionError {
    pub from: Status,
    pub to: Status,
    pub why: Refusal,
}

impl TransitionError {
    fn explain(&self) -> &'static str {
        match self.why {
            Refusal::Unchanged => "it already has that status",
            Refusal::AlreadyFinal => "the order is finished and admits no further change",
            Refusal::Backwards => "status never moves backwards",
            Refusal::NotAccepted => "the order must be accepted first",
            Refusal::RejectAfterAccept => {
                "an accepted order can no longer be rejected; cancel it instead"
            }
            Refusal::NotADelivery => "only delivery orders are delivered; use `completed`",
            Refusal::DineInNotPickedUp => "dine-in orders are not picked up; use `completed`",
        }
    }
}

/// What a store, HQ, the router or a channel asks to happen to an order. The adapter maps
/// each action onto its platform's call; the state machine maps it onto a [`Status`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum StatusAction {
    Accept { prep_minutes: u32 },
    Reject { reason: String },
    Preparing,
    Ready,
    PickedUp,
    Delivered,
    Complete,
    Cancel { reason: String },
    Fail { reason: String },
}

impl StatusAction {
    /// The status an order has after this action.
    pub fn target(&self) -> Status {
        match self {
            StatusAction::Accept { .. } => Status::Accepted,
            StatusAction::Reject { .. } => Status::Rejected,
            StatusAction::Preparing => Status::Preparing,
            StatusAction::Ready => Status::Ready,
            StatusAction::PickedUp => Status::PickedUp,
            StatusAction::Delivered => Status::Delivered,
            StatusAction::Complete => Status::Completed,
            StatusAction::Cancel { .. } => Status::Cancelled,
            StatusAction::Fail { .. } => Status::Failed,
        }
    }

    pub fn reason(&self) -> Option<&str> {
        match self {
            StatusAction::Reject { reason }
            | StatusAction::Cancel { reason }
            | StatusAction::Fail { reason } => Some(reason),
            _ => None,
        }
    }
}

/// One status change of an order, as its channel must hear of it: what was done, from
/// which status, and when. Pushes can happen later than the change (retries, a parked sync
/// replayed), so adapters take times and context from here, not from the clock or the
/// order's current status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusChange {
    pub action: StatusAction,
    /// The order's status before the change.
    pub from: Status,
    pub at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use FulfillmentKind::*;
    use Status::*;

    #[test]
    fn reaching_a_step_follows_the_forward_path() {
        assert!(Accepted.has_reached(Accepted));
        assert!(Ready.has_reached(Accepted));
        assert!(Completed.has_reached(Ready));
        assert!(Delivered.has_reached(Completed), "both end the path");
        assert!(!Accepted.has_reached(Ready));
        assert!(!Received.has_reached(Accepted));
        for ending in [Rejected, Cancelled, Failed] {
            assert!(!ending.has_reached(Accepted), "{ending} is off the path");
            assert!(!Ready.has_reached(ending));
        }
    }

    /// The whole table for delivery orders: every (from, to) pair, `true` where legal.
    #[test]
    fn delivery_transition_table() {
        let legal: &[(Status, &[Status])] = &[
            (Received, &[Accepted, Rejected, Cancelled, Failed]),
            (
                Accepted,
                &[
                    Preparing, Ready, PickedUp, Delivered, Completed, Cancelled, Failed,
                ],
            ),
            (
                Preparing,
                &[Ready, PickedUp, Delivered, Completed, Cancelled, Failed],
            ),
            (Ready, &[PickedUp, Delivered, Completed, Cancelled, Failed]),
            (PickedUp, &[Delivered, Completed, Cancelled, Failed]),
            (Delivered, &[]),
            (Completed, &[]),
            (Rejected, &[]),
            (Cancelled, &[]),
            (Failed, &[]),
        ];
        for (from, allowed) in legal {
            for to in Status::ALL {
                let result = from.transition(to, Delivery);
                assert_eq!(
                    result.is_ok(),
                    allowed.contains(&to),
                    "{from} -> {to} for a delivery order gave {result:?}"
                );
            }
        }
    }

    #[test]
    fn pickup_and_dine_in_differ_only_where_they_must() {
        for from in Status::ALL {
            for to in Status::ALL {
                let delivery = from.transition(to, Delivery).is_ok();
                let pickup = from.transition(to, Pickup).is_ok();
                let dine_in = from.transition(to, DineIn).is_ok();
                let expected_pickup = delivery && to != Delivered;
                let expected_dine_in = expected_pickup && to != PickedUp;
                assert_eq!(pickup, expected_pickup, "{from} -> {to} pickup");
                assert_eq!(dine_in, expected_dine_in, "{from} -> {to} dine-in");
            }
        }
    }

    #[test]
    fn refusals_explain_themselves() {
        let err = Completed
            .transition(Preparing, Delivery)
            .expect_err("final");
        assert_eq!(err.why, Refusal::AlreadyFinal);
        assert_eq!(
            err.to_string(),
            "cannot move an order from `completed` to `preparing`: the order is finished and admits no further change"
        );
        assert_eq!(
            Cancelled.transition(Accepted, Pickup).map_err(|e| e.why),
            Err(Refusal::AlreadyFinal)
        );
        assert_eq!(
            Ready.transition(Preparing, Pickup).map_err(|e| e.why),
            Err(Refusal::Backwards)
        );
        assert_eq!(
            Ready.transition(Received, Pickup).map_err(|e| e.why),
            Err(Refusal::Backwards)
        );
        assert_eq!(
            Received.transition(Ready, Pickup).map_err(|e| e.why),
            Err(Refusal::NotAccepted)
        );
        assert_eq!(
            Accepted.transition(Rejected, Pickup).map_err(|e| e.why),
            Err(Refusal::RejectAfterAccept)
        );
        assert_eq!(
            Ready.transition(Delivered, Pickup).map_err(|e| e.why),
            Err(Refusal::NotADelivery)
        );
        assert_eq!(
            Ready.transition(PickedUp, DineIn).map_err(|e| e.why),
            Err(Refusal::DineInNotPickedUp)
        );
        assert_eq!(
            Accepted.transition(Accepted, Pickup).map_err(|e| e.why),
            Err(Refusal::Unchanged)
        );
    }

    #[test]
    fn statuses_round_trip_through_their_names() {
        for status in Status::ALL {
            assert_eq!(Status::parse(status.as_str()), Some(status));
            let json = serde_json::to_string(&status).expect("serialize");
            assert_eq!(json, format!("\"{}\"", status.as_str()));
        }
        assert_eq!(Status::parse("done"), None);
    }

    #[test]
    fn actions_name_their_target() {
        assert_eq!(StatusAction::Accept { prep_minutes: 10 }.target(), Accepted);
        assert_eq!(StatusAction::Complete.target(), Completed);
        assert_eq!(
            StatusAction::Reject {
                reason: "closed".into()
            }
            .reason(),
            Some("closed")
        );
        let json = serde_json::to_value(StatusAction::Accept { prep_minutes: 12 }).expect("json");
        assert_eq!(
            json,
            serde_json::json!({"action": "accept", "prep_minutes": 12})
        );
    }
}
