//! The fault suite in its bounded form (a few minutes), in the test command: steady traffic
//! from every simulator through the hub run as one process per role, while each process is
//! killed with SIGKILL, the whole hub is killed, and RabbitMQ and PostgreSQL (the run's own)
//! are restarted; then every acknowledged order is reconciled. The long form is the
//! `crossdock-faults` command (README, "Faults").

use std::time::Duration;

use crossdock_faults::{Layout, Options};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_acknowledged_order_is_lost_or_duplicated_while_processes_and_services_fail() {
    let options = Options {
        duration: Duration::from_secs(100),
        rate: 15.0,
        layout: Layout::Split,
        cycle: Duration::from_secs(100),
        hub_bin: env!("CARGO_BIN_EXE_crossdock").into(),
        work_dir: None,
        drain: Duration::from_secs(240),
        duplicate_share: 0.05,
        keep: false,
    };
    let report = crossdock_faults::run(options).await.expect("the suite ran");
    println!("{report}");
    assert!(report.passed(), "the fault suite failed:\n{report}");
    assert!(
        report.acknowledged >= 1000,
        "steady traffic was acknowledged: {report}"
    );
    // Every fault of the cycle struck.
    for fault in [
        "SIGKILL hub process api",
        "SIGKILL hub process relay",
        "SIGKILL hub process router",
        "SIGKILL hub process store",
        "SIGKILL hub process fetch",
        "SIGKILL hub process sync",
        "SIGKILL every hub process",
        "RabbitMQ killed and restarted",
        "PostgreSQL crashed and restarted",
    ] {
        assert!(
            report.faults.get(fault).is_some_and(|n| *n >= 1),
            "{fault} struck: {report}"
        );
    }
}
