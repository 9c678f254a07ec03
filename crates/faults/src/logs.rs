//! Reading a whole run's hub logs for what must never be in them: a secret (every
//! channel's secrets, the admin token, the stores' tokens, the services' passwords) or a
//! customer's full phone number.

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::Path;

/// What must not appear in a log.
pub struct Forbidden {
    /// Secrets, as they would be written.
    pub secrets: Vec<String>,
    /// Phone numbers, digits only (the digits of each stretch of a line written like a
    /// number are compared, so spacing and punctuation do not hide one).
    pub phone_digits: Phones,
}

/// Phone numbers (digits only), looked up by every window of a line's digits: a long run
/// has a hundred thousand of them and its logs millions of lines.
#[derive(Debug, Default)]
pub struct Phones {
    /// The numbers by length.
    by_length: BTreeMap<usize, HashSet<String>>,
}

impl Phones {
    pub fn new(numbers: impl IntoIterator<Item = String>) -> Self {
        let mut by_length: BTreeMap<usize, HashSet<String>> = BTreeMap::new();
        for number in numbers {
            let digits: String = number.chars().filter(char::is_ascii_digit).collect();
            if !digits.is_empty() {
                by_length.entry(digits.len()).or_default().insert(digits);
            }
        }
        Self { by_length }
    }

    /// Whether `digits` (ASCII digits only) holds one of the numbers.
    pub fn found_in(&self, digits: &str) -> bool {
        self.by_length.iter().any(|(&length, numbers)| {
            digits.len() >= length
                && (0..=digits.len() - length).any(|start| {
                    digits
                        .get(start..start + length)
                        .is_some_and(|window| numbers.contains(window))
                })
        })
    }
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

/// The digits of each stretch of `line` that could be written as a phone number: digits
/// with the marks numbers are written with (`+`, `-`, `.`, parentheses, spaces) between
/// them. Anything else ends a stretch, so that a timestamp's or an id's digits are not
/// run together into a number the line never held.
fn number_runs(line: &str) -> impl Iterator<Item = String> + '_ {
    line.split(|c: char| !(c.is_ascii_digit() || matches!(c, '+' | '-' | '.' | '(' | ')' | ' ')))
        .map(|run| run.chars().filter(char::is_ascii_digit).collect::<String>())
        .filter(|digits| !digits.is_empty())
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
        let phone = number_runs(&line)
            .any(|digits| digits.len() >= 7 && forbidden.phone_digits.found_in(&digits));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_phone_is_found_among_a_lines_digits_wherever_it_sits() {
        let phones = Phones::new(["+1 (415) 555-0100".to_owned(), "13800138000".to_owned()]);
        assert!(phones.found_in("14155550100"));
        assert!(phones.found_in("2026112414155550100999"));
        assert!(phones.found_in("99913800138000"));
        assert!(!phones.found_in("1415555010"), "one digit short");
        assert!(!phones.found_in("1380013800"));
        assert!(!phones.found_in(""));
        assert!(!Phones::default().found_in("14155550100"));
    }

    #[test]
    fn a_line_leaks_a_phone_written_as_one_not_digits_run_together_from_elsewhere() {
        let dir = std::env::temp_dir().join(format!("crossdock-logs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("hub.log");
        // A long run's hub log: the timestamp's digits, run together, hold 1124091212 and
        // 2091212555 (a number the simulators could have given a customer).
        std::fs::write(
            &file,
            "2026-11-24T09:12:12.555034Z  INFO Webhook accepted. channel=\"uber_eats\"\n\
             2026-11-24T09:12:13.000001Z  INFO customer phone=+1 (209) 121-2555\n\
             2026-11-24T09:12:14.000001Z  INFO customer phone=***2555\n",
        )
        .expect("write");
        let forbidden = Forbidden {
            secrets: Vec::new(),
            phone_digits: Phones::new(["+1 209 121 2555".to_owned(), "1124091212".to_owned()]),
        };
        let (found, lines) = leaks(&file, &forbidden, 10).expect("read");
        std::fs::remove_dir_all(&dir).expect("clean up");
        assert_eq!(lines, 3);
        assert_eq!(found, ["hub.log line 2: a full phone number"]);
    }
}
