//! Failpoints for crash tests: `CROSSDOCK_FAILPOINT=<name>` makes the named point stall
//! forever (the test then kills the process with SIGKILL at exactly that moment).
//!
//! - `relay_before_publish`: the relay has claimed committed outbox rows and stops before
//!   publishing them.

/// Stalls forever if failpoint `name` is set, after logging that it was reached.
pub async fn stall_if(name: &str) {
    if std::env::var("CROSSDOCK_FAILPOINT").is_ok_and(|v| v == name) {
        tracing::warn!(failpoint = name, "Failpoint reached; stalling.");
        std::future::pending::<()>().await;
    }
}
