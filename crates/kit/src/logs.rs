//! Reading what a test captured of the logs.

/// Whether `digits` show in `logs` as a group of their own (a part of a phone number as
/// people write it), not inside a longer run of letters and digits: a timestamp's
/// fraction of a second, an id or a port holds any four digits now and then by chance.
pub fn shows_digits(logs: &str, digits: &str) -> bool {
    let apart = |c: Option<char>| !c.is_some_and(|c| c.is_ascii_alphanumeric());
    logs.match_indices(digits).any(|(at, found)| {
        apart(logs[..at].chars().next_back()) && apart(logs[at + found.len()..].chars().next())
    })
}

#[cfg(test)]
mod tests {
    use super::shows_digits;

    #[test]
    fn digits_show_only_as_a_group_of_their_own() {
        for shown in [
            "customer_phone=+44 20 7946 0991",
            "7946",
            "phone=\"7946\"",
            "(7946)",
        ] {
            assert!(shows_digits(shown, "7946"), "{shown}");
        }
        for hidden in [
            "2026-11-25T04:17:27.557946Z",
            "order_id=01a210ec-3e03-7946f-8225",
            "port=379461",
            "customer_phone=***991",
            "",
        ] {
            assert!(!shows_digits(hidden, "7946"), "{hidden}");
        }
    }
}
