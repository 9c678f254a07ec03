//! Identifiers, each a newtype parsed once where it enters the hub.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Why a string is not a valid identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("{kind} must not be empty")]
    Empty { kind: &'static str },
    #[error("{kind} `{value}` is longer than {max} characters")]
    TooLong {
        kind: &'static str,
        value: String,
        max: usize,
    },
    #[error("{kind} `{value}` may only contain ASCII letters, digits, `-`, `_` and `.`")]
    BadCharacter { kind: &'static str, value: String },
    #[error("order id `{0}` is not a UUID")]
    NotUuid(String),
}

/// Our id of an order: a UUIDv7, so ids sort by creation time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OrderId(Uuid);

impl OrderId {
    /// A new, time-ordered id.
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }

    pub fn from_uuid(uuid: Uuid) -> Self {
        Self(uuid)
    }

    pub fn as_uuid(&self) -> Uuid {
        self.0
    }

    pub fn parse(value: &str) -> Result<Self, IdError> {
        Uuid::parse_str(value)
            .map(Self)
            .map_err(|_| IdError::NotUuid(value.to_owned()))
    }
}

impl Default for OrderId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for OrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

fn check_code(kind: &'static str, value: &str, max: usize) -> Result<(), IdError> {
    if value.is_empty() {
        return Err(IdError::Empty { kind });
    }
    if value.len() > max {
        return Err(IdError::TooLong {
            kind,
            value: value.to_owned(),
            max,
        });
    }
    if !value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(IdError::BadCharacter {
            kind,
            value: value.to_owned(),
        });
    }
    Ok(())
}

/// The chain's own code of a store (`SH-001`). Also its routing-key component, hence the
/// restricted alphabet.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct StoreId(String);

impl StoreId {
    pub const MAX_LEN: usize = 64;

    pub fn parse(value: impl Into<String>) -> Result<Self, IdError> {
        let value = value.into();
        check_code("store id", &value, Self::MAX_LEN)?;
        Ok(Self(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for StoreId {
    type Error = IdError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(value)
    }
}

impl From<StoreId> for String {
    fn from(value: StoreId) -> Self {
        value.0
    }
}

impl fmt::Display for StoreId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The id of a channel (`uber_eats`, `own_app`, …), as its adapter declares it. The core
/// treats it as an opaque name: it never matches on a particular value.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ChannelId(String);

impl ChannelId {
    pub fn parse(value: impl Into<String>) -> Result<Self, IdError> {
        let value = value.into();
        check_code("channel id", &value, 32)?;
        Ok(Self(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ChannelId {
    type Error = IdError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(value)
    }
}

impl From<ChannelId> for String {
    fn from(value: ChannelId) -> Self {
        value.0
    }
}

impl fmt::Display for ChannelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_ids_are_restricted_to_routing_key_safe_characters() {
        assert!(StoreId::parse("SH-001").is_ok());
        assert_eq!(StoreId::parse(""), Err(IdError::Empty { kind: "store id" }));
        assert!(matches!(
            StoreId::parse("a b"),
            Err(IdError::BadCharacter { .. })
        ));
        assert!(matches!(
            StoreId::parse("a#b"),
            Err(IdError::BadCharacter { .. })
        ));
        assert!(matches!(
            StoreId::parse("x".repeat(65)),
            Err(IdError::TooLong { .. })
        ));
    }

    #[test]
    fn order_ids_round_trip_and_sort_by_time() {
        let first = OrderId::new();
        let second = OrderId::new();
        assert!(first < second);
        assert_eq!(OrderId::parse(&first.to_string()), Ok(first));
        assert!(OrderId::parse("nope").is_err());
    }
}
