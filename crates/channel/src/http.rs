//! Calling a platform: map its HTTP answers onto [`ChannelError`] in one place.

use std::time::Duration;

use crate::ChannelError;

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

/// Sends a request and checks its status.
pub async fn send(request: reqwest::RequestBuilder) -> Result<reqwest::Response, ChannelError> {
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
