//! The messages state changes publish, laid onto the broker topology.

use crossdock_broker::Topology;
use crossdock_db::{OutboxMessage, Routes};
use crossdock_model::{OrderId, StoreId};
use serde_json::json;
use uuid::Uuid;

/// Message kinds (the AMQP `type` property).
pub mod kind {
    pub const ORDER_RECEIVED: &str = "order.received";
    pub const ORDER_FETCH: &str = "order.fetch";
    pub const ORDER_REROUTE: &str = "order.reroute";
    pub const ORDER_ROUTED: &str = "order.routed";
    pub const SYNC_REQUESTED: &str = "sync.requested";
    pub const SYNC_PARKED: &str = "sync.parked";
}

/// The routing key of a sync nudge is this and the order's channel.
const SYNC_PREFIX: &str = "sync.";

/// The channel a sync nudge's routing key names.
pub fn sync_channel(routing_key: &str) -> Option<&str> {
    routing_key.strip_prefix(SYNC_PREFIX)
}

pub struct TopologyRoutes {
    pub topology: Topology,
}

impl Routes for TopologyRoutes {
    fn order_received(&self, order_id: OrderId) -> OutboxMessage {
        OutboxMessage {
            routing_key: "order.received".into(),
            kind: kind::ORDER_RECEIVED.into(),
            message_id: format!("received:{order_id}"),
            body: json!({ "order_id": order_id }),
        }
    }

    fn reroute(&self, order_id: OrderId, attempt: usize) -> OutboxMessage {
        OutboxMessage {
            routing_key: "order.reroute".into(),
            kind: kind::ORDER_REROUTE.into(),
            message_id: format!("reroute:{order_id}:{attempt}"),
            body: json!({ "order_id": order_id }),
        }
    }

    fn fetch(&self, channel: &str, dedupe_key: &str, body: serde_json::Value) -> OutboxMessage {
        OutboxMessage {
            routing_key: format!("fetch.{channel}"),
            kind: kind::ORDER_FETCH.into(),
            message_id: format!("fetch:{channel}:{dedupe_key}"),
            body,
        }
    }

    fn to_store(&self, store: &StoreId, order_id: OrderId, kind: &str) -> OutboxMessage {
        OutboxMessage {
            routing_key: self.topology.store_routing_key(store),
            kind: kind.into(),
            message_id: format!("{kind}:{order_id}:{store}"),
            body: json!({ "order_id": order_id, "store_id": store, "kind": kind }),
        }
    }

    fn store_status(&self, store: &StoreId, order_id: OrderId, kind: &str) -> OutboxMessage {
        OutboxMessage {
            routing_key: self.topology.status_routing_key(store),
            ..self.to_store(store, order_id, kind)
        }
    }

    fn sync(&self, channel: &str, order_id: OrderId) -> OutboxMessage {
        OutboxMessage {
            routing_key: format!("{SYNC_PREFIX}{channel}"),
            kind: kind::SYNC_REQUESTED.into(),
            message_id: format!("sync:{order_id}:{}", Uuid::now_v7()),
            body: json!({ "order_id": order_id }),
        }
    }

    fn parked(
        &self,
        channel: &str,
        order_id: OrderId,
        event_id: i64,
        body: serde_json::Value,
    ) -> OutboxMessage {
        OutboxMessage {
            routing_key: format!("parking.{channel}"),
            kind: kind::SYNC_PARKED.into(),
            message_id: format!("parked:{order_id}:{event_id}"),
            body,
        }
    }
}
