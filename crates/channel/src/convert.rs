//! What goes wrong turning a platform's order into the unified one, for adapters'
//! `convert` modules: a field that is missing or unreadable (the platform gets "malformed",
//! naming the field), money that is not money (a fractional minor unit, an unknown
//! currency), or an order the hub cannot take. Converts into [`ChannelError`].

use crossdock_model::{MoneyError, OrderError};

use crate::ChannelError;

/// Why a platform's order cannot become a unified order. Every variant names the field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConvertError {
    /// A field is missing or unreadable; the hub answers "malformed".
    #[error("{field}: {message}")]
    Field { field: String, message: String },
    /// An amount or currency that is not money in the order's currency.
    #[error("{field}: {source}")]
    Money { field: String, source: MoneyError },
    /// A well-formed order the hub cannot take (e.g. a quantity below 1).
    #[error(transparent)]
    Order(#[from] OrderError),
}

impl ConvertError {
    /// `field` is unreadable: `message` says how.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        ConvertError::Field {
            field: field.into(),
            message: message.into(),
        }
    }

    /// `field` is required and absent (or empty).
    pub fn missing(field: impl Into<String>) -> Self {
        Self::field(field, "missing")
    }

    /// Maps a money error at `field`: `.map_err(ConvertError::money_at("order.total"))`.
    pub fn money_at(field: &str) -> impl FnOnce(MoneyError) -> ConvertError + '_ {
        move |source| ConvertError::Money {
            field: field.to_owned(),
            source,
        }
    }
}

impl From<ConvertError> for ChannelError {
    fn from(error: ConvertError) -> Self {
        match error {
            ConvertError::Field { .. } => ChannelError::Malformed(error.to_string()),
            ConvertError::Money { field, source } => {
                ChannelError::Order(OrderError::MoneyAt { field, source })
            }
            ConvertError::Order(order) => ChannelError::Order(order),
        }
    }
}
