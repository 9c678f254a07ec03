//! Money: integer minor units with an ISO-4217 currency. No floats anywhere.
//!
//! Platforms send money in several units (minor units, major-unit decimals, Uber's
//! major × 10⁵). Adapters convert at their edge with the exact helpers here; a value that
//! does not land on a whole minor unit is an error, never a rounding.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why an amount or currency is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("currency `{0}` is not a three-letter ISO-4217 code")]
    BadCurrency(String),
    #[error("amount `{value}` is not a decimal number")]
    NotANumber { value: String },
    #[error("amount `{value}` has more decimals than {currency} allows ({exponent})")]
    FractionalMinorUnit {
        value: String,
        currency: Currency,
        exponent: u32,
    },
    #[error("amount `{value}` overflows 64-bit minor units")]
    Overflow { value: String },
    #[error("cannot combine {left} and {right} amounts")]
    CurrencyMismatch { left: Currency, right: Currency },
}

/// An ISO-4217 alphabetic currency code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency([u8; 3]);

impl Currency {
    pub fn parse(code: &str) -> Result<Self, MoneyError> {
        let bytes = code.as_bytes();
        if bytes.len() != 3 || !bytes.iter().all(u8::is_ascii_alphabetic) {
            return Err(MoneyError::BadCurrency(code.to_owned()));
        }
        Ok(Self([
            bytes[0].to_ascii_uppercase(),
            bytes[1].to_ascii_uppercase(),
            bytes[2].to_ascii_uppercase(),
        ]))
    }

    pub fn code(&self) -> &str {
        // Only ASCII letters are ever stored.
        std::str::from_utf8(&self.0).unwrap_or("XXX")
    }

    /// Digits after the decimal point (ISO 4217 minor unit).
    pub fn exponent(&self) -> u32 {
        match self.code() {
            "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF"
            | "UGX" | "UYI" | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => 0,
            "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
            _ => 2,
        }
    }
}

impl TryFrom<String> for Currency {
    type Error = MoneyError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Currency> for String {
    fn from(value: Currency) -> Self {
        value.code().to_owned()
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// An amount in minor units (cents, fen, yen) of one currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    pub minor: i64,
    pub currency: Currency,
}

impl Money {
    pub fn new(minor: i64, currency: Currency) -> Self {
        Self { minor, currency }
    }

    pub fn zero(currency: Currency) -> Self {
        Self { minor: 0, currency }
    }

    /// Parses a major-unit decimal string (`"12.5"`, `"-3.00"`) exactly.
    pub fn from_major_str(value: &str, currency: Currency) -> Result<Self, MoneyError> {
        let exponent = currency.exponent();
        let text = value.trim();
        let (negative, digits) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text.strip_prefix('+').unwrap_or(text)),
        };
        let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
        let well_formed = !(whole.is_empty() && fraction.is_empty())
            && whole.bytes().all(|b| b.is_ascii_digit())
            && fraction.bytes().all(|b| b.is_ascii_digit());
        if !well_formed {
            return Err(MoneyError::NotANumber {
                value: value.to_owned(),
            });
        }
        let significant = fraction.trim_end_matches('0');
        if significant.len() > exponent as usize {
            return Err(MoneyError::FractionalMinorUnit {
                value: value.to_owned(),
                currency,
                exponent,
            });
        }
        let overflow = || MoneyError::Overflow {
            value: value.to_owned(),
        };
        let mut minor: i64 = 0;
        let padded = format!("{significant:0<width$}", width = exponent as usize);
        for b in whole.bytes().chain(padded.bytes()) {
            minor = minor
                .checked_mul(10)
                .and_then(|m| m.checked_add(i64::from(b - b'0')))
                .ok_or_else(overflow)?;
        }
        Ok(Self {
            minor: if negative { -minor } else { minor },
            currency,
        })
    }

    /// Converts an amount given as major units × 10⁵ (Uber's `amount_e5`) exactly.
    pub fn from_e5(amount_e5: i64, currency: Currency) -> Result<Self, MoneyError> {
        let divisor = 10_i64.pow(5 - currency.exponent().min(5));
        if amount_e5 % divisor != 0 {
            return Err(MoneyError::FractionalMinorUnit {
                value: format!("{amount_e5}e-5"),
                currency,
                exponent: currency.exponent(),
            });
        }
        Ok(Self {
            minor: amount_e5 / divisor,
            currency,
        })
    }

    /// The amount as major units × 10⁵ (Uber's `amount_e5`): the exact inverse of
    /// [`Money::from_e5`]. Errors: [`MoneyError::Overflow`] where it does not fit in 64 bits.
    pub fn to_e5(self) -> Result<i64, MoneyError> {
        let factor = 10_i64.pow(5 - self.currency.exponent().min(5));
        self.minor
            .checked_mul(factor)
            .ok_or_else(|| MoneyError::Overflow {
                value: format!("{} {} as amount_e5", self.minor, self.currency),
            })
    }

    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        self.combine(other, i64::checked_add, "+")
    }

    pub fn checked_sub(self, other: Money) -> Result<Money, MoneyError> {
        self.combine(other, i64::checked_sub, "−")
    }

    /// `self op other` for two amounts of one currency, refusing overflow.
    fn combine(
        self,
        other: Money,
        op: fn(i64, i64) -> Option<i64>,
        symbol: &str,
    ) -> Result<Money, MoneyError> {
        if self.currency != other.currency {
            return Err(MoneyError::CurrencyMismatch {
                left: self.currency,
                right: other.currency,
            });
        }
        let minor = op(self.minor, other.minor).ok_or_else(|| MoneyError::Overflow {
            value: format!("{} {symbol} {}", self.minor, other.minor),
        })?;
        Ok(Money {
            minor,
            currency: self.currency,
        })
    }

    pub fn checked_mul(self, factor: i64) -> Result<Money, MoneyError> {
        let minor = self
            .minor
            .checked_mul(factor)
            .ok_or_else(|| MoneyError::Overflow {
                value: format!("{} × {factor}", self.minor),
            })?;
        Ok(Money {
            minor,
            currency: self.currency,
        })
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let exponent = self.currency.exponent();
        if exponent == 0 {
            return write!(f, "{} {}", self.minor, self.currency);
        }
        let scale = 10_i64.pow(exponent);
        let sign = if self.minor < 0 { "-" } else { "" };
        let abs = self.minor.unsigned_abs();
        let scale = scale.unsigned_abs();
        write!(
            f,
            "{sign}{}.{:0width$} {}",
            abs / scale,
            abs % scale,
            self.currency,
            width = exponent as usize
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cur(code: &str) -> Currency {
        Currency::parse(code).expect("valid currency")
    }

    #[test]
    fn currency_codes_are_normalised_and_checked() {
        assert_eq!(cur("usd").code(), "USD");
        assert!(Currency::parse("US").is_err());
        assert!(Currency::parse("U$D").is_err());
        assert_eq!(cur("JPY").exponent(), 0);
        assert_eq!(cur("KWD").exponent(), 3);
        assert_eq!(cur("CNY").exponent(), 2);
    }

    #[test]
    fn major_strings_parse_exactly() {
        assert_eq!(
            Money::from_major_str("1.8", cur("CNY")).map(|m| m.minor),
            Ok(180)
        );
        assert_eq!(
            Money::from_major_str("12", cur("USD")).map(|m| m.minor),
            Ok(1200)
        );
        assert_eq!(
            Money::from_major_str("-3.50", cur("USD")).map(|m| m.minor),
            Ok(-350)
        );
        assert_eq!(
            Money::from_major_str("1.500", cur("USD")).map(|m| m.minor),
            Ok(150)
        );
        assert_eq!(
            Money::from_major_str("980", cur("JPY")).map(|m| m.minor),
            Ok(980)
        );
        assert_eq!(
            Money::from_major_str("1.234", cur("KWD")).map(|m| m.minor),
            Ok(1234)
        );
        assert!(matches!(
            Money::from_major_str("1.005", cur("USD")),
            Err(MoneyError::FractionalMinorUnit { .. })
        ));
        assert!(matches!(
            Money::from_major_str("1e3", cur("USD")),
            Err(MoneyError::NotANumber { .. })
        ));
        assert!(matches!(
            Money::from_major_str(".", cur("USD")),
            Err(MoneyError::NotANumber { .. })
        ));
        assert!(matches!(
            Money::from_major_str("99999999999999999999", cur("USD")),
            Err(MoneyError::Overflow { .. })
        ));
    }

    #[test]
    fn e5_amounts_convert_by_currency_exponent() {
        assert_eq!(
            Money::from_e5(1_250_000, cur("USD")).map(|m| m.minor),
            Ok(1250)
        );
        assert_eq!(
            Money::from_e5(98_000_000, cur("JPY")).map(|m| m.minor),
            Ok(980)
        );
        assert!(Money::from_e5(1_250_001, cur("USD")).is_err());
    }

    #[test]
    fn to_e5_is_the_exact_inverse_of_from_e5() {
        for (minor, code, e5) in [
            (1250, "USD", 1_250_000),
            (-300, "USD", -300_000),
            (0, "USD", 0),
            (980, "JPY", 98_000_000),
            (1234, "KWD", 123_400),
        ] {
            let money = Money::new(minor, cur(code));
            assert_eq!(money.to_e5(), Ok(e5), "{money}");
            assert_eq!(Money::from_e5(e5, cur(code)), Ok(money), "{money}");
        }
        assert!(matches!(
            Money::new(i64::MAX / 100, cur("USD")).to_e5(),
            Err(MoneyError::Overflow { .. })
        ));
        assert!(matches!(
            Money::new(i64::MIN, cur("JPY")).to_e5(),
            Err(MoneyError::Overflow { .. })
        ));
    }

    #[test]
    fn subtraction_refuses_mixed_currencies_and_overflow() {
        let usd = |minor| Money::new(minor, cur("USD"));
        assert_eq!(usd(500).checked_sub(usd(120)), Ok(usd(380)));
        assert_eq!(usd(100).checked_sub(usd(250)), Ok(usd(-150)));
        assert_eq!(
            usd(1).checked_sub(Money::new(1, cur("EUR"))),
            Err(MoneyError::CurrencyMismatch {
                left: cur("USD"),
                right: cur("EUR")
            })
        );
        assert!(matches!(
            usd(i64::MIN).checked_sub(usd(1)),
            Err(MoneyError::Overflow { .. })
        ));
        // Subtracting i64::MIN cannot be done by negating it; checked_sub still answers.
        assert!(matches!(
            usd(0).checked_sub(usd(i64::MIN)),
            Err(MoneyError::Overflow { .. })
        ));
    }

    #[test]
    fn arithmetic_refuses_mixed_currencies_and_overflow() {
        let usd = Money::new(100, cur("USD"));
        assert_eq!(usd.checked_add(usd).map(|m| m.minor), Ok(200));
        assert!(usd.checked_add(Money::new(1, cur("EUR"))).is_err());
        assert!(Money::new(i64::MAX, cur("USD")).checked_mul(2).is_err());
    }

    #[test]
    fn display_uses_the_exponent() {
        assert_eq!(Money::new(1250, cur("USD")).to_string(), "12.50 USD");
        assert_eq!(Money::new(-5, cur("USD")).to_string(), "-0.05 USD");
        assert_eq!(Money::new(980, cur("JPY")).to_string(), "980 JPY");
    }
}
