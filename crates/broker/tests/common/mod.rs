//! What the broker's integration tests share: the bound for "soon", and the one condition
//! wait for broker-side state that no client is told of (a queue's depth or consumer
//! count), which can only be asked for again. Each test binary compiles this module on its
//! own and uses part of it.
#![allow(dead_code)]

use std::time::Duration;

/// Generous bound for anything the broker should do "soon".
pub const WAIT: Duration = Duration::from_secs(30);

/// How often [`eventually`] asks the broker again.
const POLL: Duration = Duration::from_millis(25);

/// Checks `check` until it returns a value, for at most [`WAIT`]; panics naming `what`
/// (and the last thing `check` saw, through `what`) when it never does.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {WAIT:?} waiting for {what}"
        );
        tokio::time::sleep(POLL).await;
    }
}
