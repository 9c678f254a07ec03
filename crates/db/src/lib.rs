//! PostgreSQL layer: migrations, orders, events, inbox, outbox, quarantine, store registry, status syncs.
