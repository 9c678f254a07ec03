//! Latency samples and their summary (p50, p99, max), and what a process used of the
//! machine, read from `/proc`.

use std::time::Duration;

use serde::Serialize;

/// Latencies as measured, kept whole: runs are minutes long, so every sample fits.
#[derive(Debug, Clone, Default)]
pub struct Samples(Vec<Duration>);

/// A latency summary, in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Latency {
    pub count: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Samples {
    pub fn push(&mut self, sample: Duration) {
        self.0.push(sample);
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// p50, p99 and max (nearest rank); zeros when there is no sample.
    pub fn summary(&self) -> Latency {
        let mut sorted = self.0.clone();
        sorted.sort_unstable();
        let rank = |q: f64| -> f64 {
            if sorted.is_empty() {
                return 0.0;
            }
            let index = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
            millis(sorted[index])
        };
        Latency {
            count: sorted.len(),
            p50_ms: rank(0.50),
            p99_ms: rank(0.99),
            max_ms: sorted.last().copied().map(millis).unwrap_or(0.0),
        }
    }
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// CPU time a process used so far (user and system), and its memory, from `/proc`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProcessUse {
    pub cpu: Duration,
    /// Resident memory now, in bytes.
    pub rss: u64,
    /// The highest resident memory of its life, in bytes.
    pub peak_rss: u64,
}

impl ProcessUse {
    /// Reads process `pid`'s (`None`: this process's) use; `None` if it cannot be read
    /// (the process is gone).
    pub fn read(pid: Option<u32>) -> Option<ProcessUse> {
        let dir = match pid {
            Some(pid) => format!("/proc/{pid}"),
            None => "/proc/self".to_owned(),
        };
        let stat = std::fs::read_to_string(format!("{dir}/stat")).ok()?;
        // The command name may hold spaces: the fields start after its closing ')'.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
        let ticks: u64 =
            fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
        let status = std::fs::read_to_string(format!("{dir}/status")).ok()?;
        let kib = |key: &str| -> u64 {
            status
                .lines()
                .find_map(|line| line.strip_prefix(key))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(0)
                * 1024
        };
        Some(ProcessUse {
            cpu: Duration::from_secs_f64(ticks as f64 / clock_ticks()),
            rss: kib("VmRSS:"),
            peak_rss: kib("VmHWM:"),
        })
    }
}

/// Clock ticks a second (`CLK_TCK`), in which `/proc` counts CPU time.
fn clock_ticks() -> f64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .filter(|ticks| *ticks > 0)
        .map_or(100.0, |ticks| ticks as f64)
}

/// The machine's CPU time so far, busy and in all, over every core (`/proc/stat`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MachineUse {
    pub busy: Duration,
    pub total: Duration,
}

impl MachineUse {
    pub fn read() -> Option<MachineUse> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let line = stat.lines().find(|line| line.starts_with("cpu "))?;
        let values: Vec<u64> = line
            .split_whitespace()
            .skip(1)
            .filter_map(|n| n.parse().ok())
            .collect();
        let total: u64 = values.iter().sum();
        // idle and iowait are the fourth and fifth.
        let idle = values.get(3).copied().unwrap_or(0) + values.get(4).copied().unwrap_or(0);
        let seconds = |ticks: u64| Duration::from_secs_f64(ticks as f64 / clock_ticks());
        Some(MachineUse {
            busy: seconds(total - idle),
            total: seconds(total),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut samples = Samples::default();
        for ms in 1..=100 {
            samples.push(Duration::from_millis(ms));
        }
        let summary = samples.summary();
        assert_eq!(summary.count, 100);
        assert_eq!(summary.p50_ms, 50.0);
        assert_eq!(summary.p99_ms, 99.0);
        assert_eq!(summary.max_ms, 100.0);
        assert_eq!(Samples::default().summary(), Latency::default());
    }

    #[test]
    fn this_process_is_read_from_proc() {
        let used = ProcessUse::read(None).expect("/proc/self");
        assert!(used.rss > 0 && used.peak_rss >= used.rss, "{used:?}");
        let machine = MachineUse::read().expect("/proc/stat");
        assert!(machine.total >= machine.busy && machine.total > Duration::ZERO);
    }
}
