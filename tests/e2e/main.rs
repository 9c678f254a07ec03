//! End-to-end tests: the real hub against real PostgreSQL and RabbitMQ, driven through the
//! platform simulators. Each test gets its own database and its own broker prefix, so the
//! tests run in parallel. `TEST_LOG=1` shows the hub's logs.

mod authz;
mod bad_input;
mod browser;
mod codes;
mod demo;
mod helpers;
mod hq;
mod ingest;
mod menu;
mod metrics;
mod normalize;
mod own_app;
mod process;
mod quotes;
mod reconnect;
mod rerouting;
mod restart;
mod store_sales;
mod sync;
mod uber_eats;
