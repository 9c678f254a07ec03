//! A store's opening hours, compiled once from its profile: intervals per weekday in the
//! store's own time zone, intervals that run past midnight, and special days closed.

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Timelike, Utc, Weekday};
use chrono_tz::Tz;

const DAYS: [(&str, Weekday); 7] = [
    ("mon", Weekday::Mon),
    ("tue", Weekday::Tue),
    ("wed", Weekday::Wed),
    ("thu", Weekday::Thu),
    ("fri", Weekday::Fri),
    ("sat", Weekday::Sat),
    ("sun", Weekday::Sun),
];

/// Minutes after local midnight.
type Minute = u32;

/// When a store is open.
#[derive(Debug, Clone, PartialEq)]
pub struct OpeningHours {
    zone: Tz,
    /// Per weekday (Monday first): `(open, close)` minutes; `close <= open` runs past
    /// midnight into the next day, and `(0, 1440)` is the whole day.
    days: [Vec<(Minute, Minute)>; 7],
    /// Local dates the store is closed all day (and so is the part of the day before's
    /// interval that runs into it).
    closed_on: Vec<NaiveDate>,
}

fn minute(text: &str) -> Result<Minute, String> {
    let (h, m) = text
        .split_once(':')
        .ok_or_else(|| format!("`{text}` is not HH:MM"))?;
    let (h, m): (u32, u32) = (
        h.parse().map_err(|_| format!("`{text}` is not HH:MM"))?,
        m.parse().map_err(|_| format!("`{text}` is not HH:MM"))?,
    );
    if m >= 60 || h > 24 || (h == 24 && m != 0) {
        return Err(format!("`{text}` is not a time of day"));
    }
    Ok(h * 60 + m)
}

impl OpeningHours {
    /// Compiles `hours` (`mon`…`sun` → `[["HH:MM", "HH:MM"], …]`) in time zone `zone`.
    /// Errors: an unknown zone or day, or a time that is not HH:MM, say which.
    pub fn compile(
        zone: &str,
        hours: &std::collections::BTreeMap<String, Vec<[String; 2]>>,
        closed_on: &[NaiveDate],
    ) -> Result<Self, String> {
        let zone: Tz = zone
            .parse()
            .map_err(|_| format!("time zone `{zone}` is not an IANA zone"))?;
        let mut days: [Vec<(Minute, Minute)>; 7] = Default::default();
        for (day, intervals) in hours {
            let index = DAYS
                .iter()
                .position(|(name, _)| name == day)
                .ok_or_else(|| format!("`{day}` is not a day (mon…sun)"))?;
            for [open, close] in intervals {
                let (open, close) = (minute(open)?, minute(close)?);
                if open == 24 * 60 {
                    return Err(format!("{day}: an interval cannot open at 24:00"));
                }
                days[index].push((open, close));
            }
        }
        Ok(Self {
            zone,
            days,
            closed_on: closed_on.to_vec(),
        })
    }

    /// Always open (every day, all day), in UTC.
    pub fn always() -> Self {
        Self {
            zone: Tz::UTC,
            days: std::array::from_fn(|_| vec![(0, 24 * 60)]),
            closed_on: vec![],
        }
    }

    /// Whether the store is open at `at`.
    pub fn is_open(&self, at: DateTime<Utc>) -> bool {
        let local = self.zone.from_utc_datetime(&at.naive_utc());
        let date = local.date_naive();
        let now = local.hour() * 60 + local.minute();
        let today = local.weekday().num_days_from_monday() as usize;
        let closed = |day: NaiveDate| self.closed_on.contains(&day);
        // Today's intervals, those that run past midnight counted up to midnight.
        let open_today = !closed(date)
            && self.days[today].iter().any(|&(open, close)| {
                if close > open {
                    (open..close).contains(&now)
                } else {
                    now >= open
                }
            });
        if open_today {
            return true;
        }
        // Yesterday's intervals that run past midnight into today.
        let yesterday = (today + 6) % 7;
        let Some(previous) = date.pred_opt() else {
            return false;
        };
        !closed(previous)
            && !closed(date)
            && self.days[yesterday]
                .iter()
                .any(|&(open, close)| close <= open && now < close)
    }

    /// The local time at `at`, for reasons people read (`Sat 01:30 Europe/London`).
    pub fn local(&self, at: DateTime<Utc>) -> String {
        let local = self.zone.from_utc_datetime(&at.naive_utc());
        format!("{} {}", local.format("%a %H:%M"), self.zone.name())
    }
}
