//! The fault suite in its bounded form (a few minutes), in the test command: steady traffic
//! from every simulator through the hub run as one process per role, while each process is
//! killed with SIGKILL, the whole hub is killed, RabbitMQ and PostgreSQL (the run's own)
//! are restarted, the platforms' APIs answer 429 with Retry-After, 500 and nothing in time
//! for a while, stores stop accepting, and platforms cancel orders (before the order, with
//! it, twice, after the store accepted) and send courier events out of order; then every
//! acknowledged order is reconciled. The long form is the `crossdock-faults` command
//! (README, "Faults").

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
        cancel_share: 0.06,
        courier_share: 0.1,
        keep: false,
    };
    let report = crossdock_faults::run(options).await.expect("the suite ran");
    println!("{report}");
    assert!(report.passed(), "the fault suite failed:\n{report}");
    assert!(
        report.acknowledged >= 1000,
        "steady traffic was acknowledged: {report}"
    );
    // Every fault of the cycle struck, and the platforms' events out of order.
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
        "platform APIs answer 429 with Retry-After",
        "platform APIs answer 500",
        "platform APIs time out",
        "a store stops accepting",
        "platform cancels before the order arrives",
        "platform cancels while the order arrives",
        "platform cancels twice",
        "platform cancels after the store accepted",
        "courier events out of order",
    ] {
        assert!(
            report.faults.get(fault).is_some_and(|n| *n >= 1),
            "{fault} struck: {report}"
        );
    }
    // The platforms' faults were answered, and the hub rode them out.
    assert!(
        report.platform_faults.answers.contains_key(&429)
            && report.platform_faults.answers.contains_key(&500)
            && report.platform_faults.delayed > 0,
        "the platforms answered 429, 500 and late: {report}"
    );
    assert_eq!(report.statuses_parked, 0, "nothing parked: {report}");
}
