//! Typed channel failures. Each says whether retrying can help, and carries what a person
//! needs to fix the input.

use std::time::Duration;

use axum::http::StatusCode;
use crossdock_model::OrderError;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ChannelError {
    /// Missing or wrong credentials or signature.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// A correctly signed request outside the replay window.
    #[error("stale request: {0}")]
    Stale(String),
    /// A body or header the adapter cannot read; the message names what is wrong.
    #[error("malformed request: {0}")]
    Malformed(String),
    /// A well-formed order the hub cannot take.
    #[error("unacceptable order: {0}")]
    Order(#[from] OrderError),
    /// The channel has no such operation.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// The platform could not be reached or did not answer in time.
    #[error("transport: {0}")]
    Transport(String),
    /// The platform asked us to slow down.
    #[error("rate limited by the platform (retry after {retry_after:?})")]
    RateLimited { retry_after: Option<Duration> },
    /// The platform answered with an error status.
    #[error("platform answered {status}: {body}")]
    Platform { status: u16, body: String },
}

impl ChannelError {
    /// Whether the same call may succeed later.
    pub fn is_retryable(&self) -> bool {
        match self {
            ChannelError::Transport(_) | ChannelError::RateLimited { .. } => true,
            ChannelError::Platform { status, .. } => *status >= 500 || *status == 408,
            _ => false,
        }
    }

    /// The status the hub answers a platform's request with when this refuses it.
    pub fn http_status(&self) -> StatusCode {
        match self {
            ChannelError::Unauthorized(_) | ChannelError::Stale(_) => StatusCode::UNAUTHORIZED,
            ChannelError::Malformed(_) | ChannelError::Order(_) => StatusCode::BAD_REQUEST,
            ChannelError::Unsupported(_) => StatusCode::NOT_FOUND,
            ChannelError::Transport(_)
            | ChannelError::RateLimited { .. }
            | ChannelError::Platform { .. } => StatusCode::BAD_GATEWAY,
        }
    }

    /// A short, bounded code for logs, metrics and quarantine records.
    pub fn kind(&self) -> &'static str {
        match self {
            ChannelError::Unauthorized(_) => "unauthorized",
            ChannelError::Stale(_) => "stale",
            ChannelError::Malformed(_) => "malformed",
            ChannelError::Order(_) => "unacceptable_order",
            ChannelError::Unsupported(_) => "unsupported",
            ChannelError::Transport(_) => "transport",
            ChannelError::RateLimited { .. } => "rate_limited",
            ChannelError::Platform { .. } => "platform",
        }
    }

    /// A platform-side hint for how long to wait.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ChannelError::RateLimited { retry_after } => *retry_after,
            _ => None,
        }
    }
}

/// Untrusted text (a platform's field, a header) cut to 64 characters for an error
/// message or a log, with `…` where it was cut: an error quotes what was wrong without
/// letting a hostile input blow up the message, the quarantine record or the log.
pub fn clip(text: &str) -> String {
    let mut clipped: String = text.chars().take(64).collect();
    if clipped.len() < text.len() {
        clipped.push('…');
    }
    clipped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_cuts_long_text_on_a_character_boundary() {
        assert_eq!(clip("short"), "short");
        let long = "é".repeat(100);
        let clipped = clip(&long);
        assert_eq!(clipped.chars().count(), 65);
        assert!(clipped.ends_with('…'));
        assert_eq!(clip(&"x".repeat(64)), "x".repeat(64));
    }

    #[test]
    fn retryable_failures_are_the_transient_ones() {
        assert!(ChannelError::Transport("timeout".into()).is_retryable());
        assert!(ChannelError::RateLimited { retry_after: None }.is_retryable());
        assert!(
            ChannelError::Platform {
                status: 503,
                body: String::new()
            }
            .is_retryable()
        );
        assert!(
            !ChannelError::Platform {
                status: 404,
                body: String::new()
            }
            .is_retryable()
        );
        assert!(!ChannelError::Unauthorized("x".into()).is_retryable());
        assert_eq!(
            ChannelError::Stale("old".into()).http_status(),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            ChannelError::Malformed("x".into()).http_status(),
            StatusCode::BAD_REQUEST
        );
    }
}
