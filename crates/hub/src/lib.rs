//! The Crossdock hub: the `crossdock` binary's library.
//!
//! # Layout
//!
//! - [`config`]: settings from `config/crossdock.toml` plus environment overrides.
//! - [`channels`]: the one list of channel adapters.
//! - [`app`]: building the shared state and starting the stages a process runs.
//! - [`desk`]: where work waits to be done in batches (orders to record, to route).
//! - [`http`]: webhooks, the store and HQ API, health, the store console and HQ dashboard
//!   pages and their live streams.
//! - [`feed`]: which store's orders may have changed, for the live streams.
//! - [`metrics`]: the Prometheus metrics and `GET /metrics`.
//! - [`workers`]: relay, router, store delivery, fetch, sync.
//! - [`routes`]: the broker messages state changes publish.
//! - [`chain`]: loading the chain file and issuing store tokens.
//! - [`inspect`]: `normalize` and `store-credential`, for ops engineers.
//! - [`demo`]: the simulators, the sample chain and a stream of demo orders.

pub mod app;
pub mod chain;
pub mod channels;
pub mod config;
pub mod demo;
pub mod desk;
pub mod failpoint;
pub mod feed;
pub mod http;
pub mod inspect;
pub mod links;
pub mod metrics;
pub mod routes;
pub mod workers;

pub use app::{HubHandle, Roles, start};
pub use config::Settings;
