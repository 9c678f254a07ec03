//! Failpoints for crash tests: `CROSSDOCK_FAILPOINT=<name>` makes the named point stall
//! forever (the test then kills the process with SIGKILL at exactly that moment).
//!
//! - `before_publish`: committed outbox rows are about to be published (by their
//!   committer's publisher or by the relay) and are not.

/// The failpoint set for this process, read once (each publish batch asks).
static SET: std::sync::LazyLock<Option<String>> =
    std::sync::LazyLock::new(|| std::env::var("CROSSDOCK_FAILPOINT").ok());

/// Stalls forever if failpoint `name` is set, after logging that it was reached.
pub async fn stall_if(name: &str) {
    if SET.as_deref() == Some(name) {
        tracing::warn!(failpoint = name, "Failpoint reached; stalling.");
        std::future::pending::<()>().await;
    }
}
