//! What the broker's integration tests share: the bound for "soon", and the one condition
//! wait for broker-side state that no client is told of (a queue's depth or consumer
//! count), which can only be asked for again. Each test binary compiles this module on its
//! own and uses part of it.
#![allow(dead_code)]

use std::time::Duration;

use crossdock_broker::{BrokerConfig, Topology};

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

/// Deletes a test's topology if the test panics before its own cleanup, so a failing test
/// leaves no queues or exchanges behind. Hold it for the whole test (declared before the
/// consumers, so it is dropped after them): it deletes on its own thread and runtime
/// ([`Topology::remove`]), while the test's runtime (and the consumers that would declare the
/// topology again) waits.
pub struct RemovedOnPanic(pub BrokerConfig);

impl Drop for RemovedOnPanic {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let config = self.0.clone();
        let removal = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(Topology::remove(&config, &[], Duration::from_secs(10)));
        });
        let _ = removal.join();
    }
}
