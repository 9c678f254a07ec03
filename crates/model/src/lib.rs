//! The unified order of Crossdock and its status state machine.
//!
//! # Layout
//!
//! - [`ids`]: identifiers parsed once at the boundary (`OrderId`, `StoreId`, `ChannelId`).
//! - [`money`]: integer minor units with an ISO-4217 currency; never floats.
//! - [`order`]: the unified order every adapter fills ([`NewOrder`]) and the stored
//!   order ([`Order`]) the API shows.
//! - [`status`]: the status state machine; every transition goes through
//!   [`Status::transition`].
//! - [`event`]: the events of an order's history (who did what, when, why).
//!
//! Architecture invariant: this crate does no I/O and never names a channel. Its serde
//! shape *is* the published unified-order document (what `/api/v1` returns and what
//! travels on the queues), so a change to a field here is a contract change.

pub mod event;
pub mod ids;
pub mod money;
pub mod order;
pub mod status;
pub mod store;

pub use event::{EventKind, EventSource, OrderEvent};
pub use ids::{ChannelId, IdError, OrderId, StoreId};
pub use money::{Currency, Money, MoneyError};
pub use order::{
    Address, CoordSystem, Coordinates, Customer, DeliveredBy, Discount, Fees, Flag, Fulfillment,
    FulfillmentKind, FundedBy, Line, Modifier, NewOrder, Order, OrderError, Payment, Timing,
    Totals, Unroutable, mask_phone,
};
pub use status::{Status, StatusAction, StatusChange, TransitionError};
pub use store::{Brand, ChainFile, LatLng, StoreProfile};
