//! The history of an order: every change is an event with a time, a source and a reason.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::status::Status;

/// Who caused an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventSource {
    Channel,
    Store,
    Router,
    Hq,
    Hub,
}

impl EventSource {
    pub fn as_str(&self) -> &'static str {
        match self {
            EventSource::Channel => "channel",
            EventSource::Store => "store",
            EventSource::Router => "router",
            EventSource::Hq => "hq",
            EventSource::Hub => "hub",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        [
            Self::Channel,
            Self::Store,
            Self::Router,
            Self::Hq,
            Self::Hub,
        ]
        .into_iter()
        .find(|s| s.as_str() == value)
    }
}

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// The order entered the hub.
    Received,
    /// The router assigned a store (or found none); `data` holds the decision.
    Routed,
    /// The order's status changed; `status` is the new one.
    StatusChanged,
    /// The order was handed to its store's queue consumer.
    DeliveredToStore,
    /// A status push reached the platform.
    SyncDelivered,
    /// A status push failed and will be retried.
    SyncFailed,
    /// A status push kept failing and waits for HQ.
    SyncParked,
    /// A status push was not needed (the platform has no such call, or the order was
    /// cancelled by the platform).
    SyncSkipped,
    /// The order was flagged for attention (e.g. totals that do not add up).
    Flagged,
    /// The assigned store rejected the order or did not accept it in time; it was taken
    /// back from that store (`data.store`, `data.by`: `store` or `timeout`).
    Declined,
    /// The order waits for HQ: the channel named the store and that store declined it.
    NeedsAttention,
    /// HQ put the order's parked status pushes back to pending, to be pushed again in
    /// order (`data.event_ids`: the status changes replayed).
    SyncReplayed,
}

impl EventKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            EventKind::Received => "received",
            EventKind::Routed => "routed",
            EventKind::StatusChanged => "status_changed",
            EventKind::DeliveredToStore => "delivered_to_store",
            EventKind::SyncDelivered => "sync_delivered",
            EventKind::SyncFailed => "sync_failed",
            EventKind::SyncParked => "sync_parked",
            EventKind::SyncSkipped => "sync_skipped",
            EventKind::Flagged => "flagged",
            EventKind::Declined => "declined",
            EventKind::NeedsAttention => "needs_attention",
            EventKind::SyncReplayed => "sync_replayed",
        }
    }

    pub const ALL: [EventKind; 12] = [
        EventKind::Received,
        EventKind::Routed,
        EventKind::StatusChanged,
        EventKind::DeliveredToStore,
        EventKind::SyncDelivered,
        EventKind::SyncFailed,
        EventKind::SyncParked,
        EventKind::SyncSkipped,
        EventKind::Flagged,
        EventKind::Declined,
        EventKind::NeedsAttention,
        EventKind::SyncReplayed,
    ];

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == value)
    }
}

/// One entry of an order's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderEvent {
    /// Position in the order's history, from 1.
    pub seq: i32,
    pub at: DateTime<Utc>,
    pub source: EventSource,
    pub kind: EventKind,
    /// The order's status after this event, where it changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Details: the routing decision, the platform's answer, the action pushed.
    #[serde(skip_serializing_if = "serde_json::Value::is_null", default)]
    pub data: serde_json::Value,
}
