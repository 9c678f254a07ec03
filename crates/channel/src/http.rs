//! Calling a platform: map its HTTP answers onto [`ChannelError`] in one place, and hold
//! every call to the caller's rate limit ([`with_call_gate`]): the hub runs each status
//! push inside its channel's limit, so that only the calls that reach the platform count
//! against it (none for a push the platform has no call for, two for a push of two calls).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::ChannelError;

/// Waits until one more call to the platform is allowed (a rate limiter's turn).
pub type CallGate = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

tokio::task_local! {
    static CALL_GATE: CallGate;
}

/// Runs `work` with every platform call it makes through [`send`] held to `gate` first.
pub async fn with_call_gate<F: Future>(gate: CallGate, work: F) -> F::Output {
    CALL_GATE.scope(gate, work).await
}

/// Waits for the gate of the [`with_call_gate`] this runs in, if any: what [`send`] does
/// before each call.
pub async fn call_gate() {
    if let Ok(gate) = CALL_GATE.try_with(Arc::clone) {
        gate().await;
    }
}

/// The default timeout for one call to a platform.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Maps a transport failure (connect, timeout, body read) onto a retryable error.
pub fn transport_error(error: reqwest::Error) -> ChannelError {
    let what = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    let url = error
        .url()
        .map(|u| format!(" ({})", u.path()))
        .unwrap_or_default();
    ChannelError::Transport(format!("{what}{url}: {error}"))
}

/// Turns a non-success answer into the matching error: 429 → rate limited (with the
/// `Retry-After` seconds), any other status → [`ChannelError::Platform`] with the body
/// (cut to 500 bytes).
pub async fn check(response: reqwest::Response) -> Result<reqwest::Response, ChannelError> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    if status.as_u16() == 429 {
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        return Err(ChannelError::RateLimited { retry_after });
    }
    let mut body = response.text().await.unwrap_or_default();
    if body.len() > 500 {
        let mut cut = 500;
        while !body.is_char_boundary(cut) {
            cut -= 1;
        }
        body.truncate(cut);
    }
    Err(ChannelError::Platform {
        status: status.as_u16(),
        body,
    })
}

/// Sends a request (after the call gate's turn, inside [`with_call_gate`]) and checks its
/// status.
pub async fn send(request: reqwest::RequestBuilder) -> Result<reqwest::Response, ChannelError> {
    call_gate().await;
    let response = request.send().await.map_err(transport_error)?;
    check(response).await
}

/// Reads a JSON body, naming what went wrong if it is not the expected shape.
/// The body of a checked response.
pub async fn body(response: reqwest::Response) -> Result<bytes::Bytes, ChannelError> {
    response.bytes().await.map_err(transport_error)
}

pub async fn json<T: serde::de::DeserializeOwned>(
    response: reqwest::Response,
    what: &str,
) -> Result<T, ChannelError> {
    let bytes = response.bytes().await.map_err(transport_error)?;
    read_json(&bytes, what)
}

/// Reads a platform's JSON answer; `what` names it in the error.
pub fn read_json<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    what: &str,
) -> Result<T, ChannelError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ChannelError::Malformed(format!("{what} from the platform: {e}")))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test]
    async fn the_call_gate_holds_calls_inside_its_scope_only() {
        let passed = Arc::new(AtomicU32::new(0));
        let counter = passed.clone();
        let gate: CallGate = Arc::new(move || {
            let counter = counter.clone();
            Box::pin(async move {
                counter.fetch_add(1, Ordering::SeqCst);
            })
        });
        call_gate().await;
        assert_eq!(passed.load(Ordering::SeqCst), 0, "no gate outside a scope");
        with_call_gate(gate, async {
            call_gate().await;
            call_gate().await;
        })
        .await;
        assert_eq!(passed.load(Ordering::SeqCst), 2, "each call waited once");
        call_gate().await;
        assert_eq!(passed.load(Ordering::SeqCst), 2);
    }
}
