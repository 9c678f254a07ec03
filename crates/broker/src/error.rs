//! Typed broker failures. Each variant names what failed and what to check; none of them
//! carries the password of the AMQP URL (see [`redact_url`]).

use std::time::Duration;

/// A failure of the RabbitMQ layer.
///
/// Everything here is retryable in principle (the broker may come back), except
/// [`BrokerError::InvalidName`], which is a programming or configuration error.
/// `Declare` failing with `PRECONDITION_FAILED` means a queue or exchange already exists with
/// other arguments: delete it or use the same settings (delivery limit, shard count).
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The TCP/AMQP handshake failed.
    #[error(
        "cannot connect to RabbitMQ at {url_without_password} (is it running and are the \
         credentials right? scripts/services.sh starts a local one): {source}"
    )]
    Connect {
        url_without_password: String,
        #[source]
        source: lapin::Error,
    },
    /// Connecting, opening a channel or declaring the topology took too long.
    #[error(
        "RabbitMQ at {url_without_password} did not answer within {timeout:?} while {step} \
         (broker overloaded, starting up, or blocked by a resource alarm?)"
    )]
    Timeout {
        url_without_password: String,
        step: &'static str,
        timeout: Duration,
    },
    /// A queue, exchange or binding could not be declared.
    #[error(
        "declaring {what} failed (if it exists with other arguments, delete it or use the \
         same delivery limit and shard count): {source}"
    )]
    Declare {
        what: String,
        #[source]
        source: lapin::Error,
    },
    /// A queue or exchange could not be deleted.
    #[error("deleting {what} failed: {source}")]
    Delete {
        what: String,
        #[source]
        source: lapin::Error,
    },
    /// Opening a channel or configuring it (`basic.qos`, `confirm.select`) failed.
    #[error("RabbitMQ channel failed: {0}")]
    Channel(#[source] lapin::Error),
    /// `basic.consume` was refused, typically because the queue does not exist.
    #[error("cannot consume from queue `{queue}` (is the topology declared?): {source}")]
    Consume {
        queue: String,
        #[source]
        source: lapin::Error,
    },
    /// A name that AMQP cannot carry (longer than 255 bytes).
    #[error("`{name}` cannot be used as an AMQP {what}: it is longer than 255 bytes")]
    InvalidName { what: &'static str, name: String },
}

/// The AMQP URL with its password replaced by `***`, fit for logs and error messages.
///
/// `amqp://guest:secret@host:5672/%2f` becomes `amqp://guest:***@host:5672/%2f`; a URL
/// without credentials is returned unchanged.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let authority_start = scheme_end + 3;
    let rest = &url[authority_start..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else {
        return url.to_owned();
    };
    let userinfo = &authority[..at];
    let Some(colon) = userinfo.find(':') else {
        return url.to_owned();
    };
    format!(
        "{}{}:***{}",
        &url[..authority_start],
        &userinfo[..colon],
        &url[authority_start + at..]
    )
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("amqp://guest:guest@127.0.0.1:5672/%2f"),
            "amqp://guest:***@127.0.0.1:5672/%2f"
        );
        assert_eq!(
            redact_url("amqps://u:p@ss:w@host/vh?heartbeat=10"),
            "amqps://u:***@host/vh?heartbeat=10"
        );
        assert_eq!(
            redact_url("amqp://127.0.0.1:5672/%2f"),
            "amqp://127.0.0.1:5672/%2f"
        );
        assert_eq!(redact_url("amqp://user@host/"), "amqp://user@host/");
        assert_eq!(redact_url("not a url"), "not a url");
    }
}
