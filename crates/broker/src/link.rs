//! Whether a link to a service is up right now, and since when: each publisher and
//! consumer keeps one for its broker session, and a process's readiness report reads them.
//!
//! A link starts down ("not connected yet"). [`LinkState::set_up`] and
//! [`LinkState::set_down`] say whether they changed anything, so the owner logs each
//! outage once when it starts and once when it ends, not on every retry.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// One link's state, shared by cheap clones.
#[derive(Clone, Debug, Default)]
pub struct LinkState {
    inner: Arc<Mutex<LinkSnapshot>>,
}

/// A link's state at one moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkSnapshot {
    pub up: bool,
    /// When the link last went up or down (or was created).
    pub since: Instant,
    /// Why it is down, once a connection attempt failed (`None` while up, or before the
    /// first attempt).
    pub error: Option<String>,
}

impl Default for LinkSnapshot {
    fn default() -> Self {
        Self {
            up: false,
            since: Instant::now(),
            error: None,
        }
    }
}

impl LinkState {
    /// The state now.
    pub fn snapshot(&self) -> LinkSnapshot {
        self.lock().clone()
    }

    /// Marks the link up. Returns how long it had been down if it was down.
    pub fn set_up(&self) -> Option<Duration> {
        let mut state = self.lock();
        if state.up {
            return None;
        }
        let down_for = state.since.elapsed();
        *state = LinkSnapshot {
            up: true,
            since: Instant::now(),
            error: None,
        };
        Some(down_for)
    }

    /// Marks the link down for `error`. Returns `true` if it was up (an outage starts).
    pub fn set_down(&self, error: impl Into<String>) -> bool {
        let mut state = self.lock();
        let was_up = state.up;
        if was_up {
            state.since = Instant::now();
        }
        state.up = false;
        state.error = Some(error.into());
        was_up
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LinkSnapshot> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_starts_down_and_reports_each_change_once() {
        let link = LinkState::default();
        let first = link.snapshot();
        assert!(!first.up);
        assert_eq!(first.error, None);

        assert!(!link.set_down("refused"), "already down: no outage starts");
        assert_eq!(link.snapshot().since, first.since, "still the same outage");
        assert_eq!(link.snapshot().error.as_deref(), Some("refused"));

        assert!(link.set_up().is_some());
        assert!(link.set_up().is_none(), "already up");
        let up = link.snapshot();
        assert!(up.up);
        assert_eq!(up.error, None);

        assert!(link.set_down("connection reset"));
        assert!(!link.set_down("refused"));
        let down = link.snapshot();
        assert!(!down.up);
        assert!(down.since >= up.since);
        assert_eq!(down.error.as_deref(), Some("refused"), "the latest reason");
    }

    #[test]
    fn clones_share_the_state() {
        let link = LinkState::default();
        let reader = link.clone();
        link.set_up();
        assert!(reader.snapshot().up);
    }
}
