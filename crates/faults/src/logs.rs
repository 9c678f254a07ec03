//! Reading a whole run's hub logs for what must never be in them: a secret (every
//! channel's secrets, the admin token, the stores' tokens, the services' passwords) or a
//! customer's full phone number.

use std::io::{BufRead, BufReader};
use std::path::Path;

/// What must not appear in a log.
pub struct Forbidden {
    /// Secrets, as they would be written.
    pub secrets: Vec<String>,
    /// Phone numbers, digits only (a line's digits are compared, so spacing does not hide
    /// one).
    pub phone_digits: Vec<String>,
}

impl Forbidden {
    /// Every channel's development secrets (names that say secret, key, token or session),
    /// plus `more`.
    pub fn channel_secrets(more: impl IntoIterator<Item = String>) -> Vec<String> {
        let mut secrets: Vec<String> = crossdock_hub::channels::factories()
            .iter()
            .flat_map(|factory| factory.dev_secrets().iter())
            .filter(|(name, value)| {
                ["secret", "key", "token", "session"]
                    .iter()
                    .any(|word| name.contains(word))
                    && value.len() >= 12
            })
            .map(|(_, value)| {
                // A PEM key is checked by its first line of key material.
                value
                    .lines()
                    .find(|line| !line.starts_with("-----") && line.len() >= 12)
                    .unwrap_or(value)
                    .to_owned()
            })
            .collect();
        secrets.extend(more);
        secrets.sort();
        secrets.dedup();
        secrets
    }
}

/// Lines of `file` holding something forbidden (at most `limit`), and how many lines it has.
pub fn leaks(
    file: &Path,
    forbidden: &Forbidden,
    limit: usize,
) -> std::io::Result<(Vec<String>, u64)> {
    let reader = BufReader::new(std::fs::File::open(file)?);
    let mut found = Vec::new();
    let mut lines = 0;
    for line in reader.lines() {
        let line = line?;
        lines += 1;
        if found.len() >= limit {
            continue;
        }
        let secret = forbidden.secrets.iter().any(|s| line.contains(s.as_str()));
        let digits: String = line.chars().filter(char::is_ascii_digit).collect();
        let phone = digits.len() >= 7
            && forbidden
                .phone_digits
                .iter()
                .any(|p| digits.contains(p.as_str()));
        if secret || phone {
            // The line itself is not repeated: it would leak again.
            found.push(format!(
                "{} line {lines}: {}",
                file.file_name().and_then(|n| n.to_str()).unwrap_or("?"),
                if secret {
                    "a secret"
                } else {
                    "a full phone number"
                }
            ));
            tracing::error!(file = %file.display(), kind = if secret { "secret" } else { "phone" }, "A log line leaks.");
        }
    }
    Ok((found, lines))
}
