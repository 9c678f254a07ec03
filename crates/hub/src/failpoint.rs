//! Failpoints for crash tests: `CROSSDOCK_FAILPOINT=<name>` makes the named point stall
//! forever (the test then kills the process with SIGKILL at exactly that moment).
//!
//! - `before_publish`: committed outbox rows are about to be published (by their
//!   committer's publisher or by the relay) and are not.

/// Stalls forever if failpoint `name` is set, after logging that it was reached.
pub async fn stall_if(name: &str) {
    if std::env::var("CROSSDOCK_FAILPOINT").is_ok_and(|v| v == name) {
        tracing::warn!(failpoint = name, "Failpoint reached; stalling.");
        std::future::pending::<()>().await;
    }
}
