//! The benchmark in miniature, in the test command, so that it keeps working: a small
//! floor, then one short step at a low fixed rate through the whole pipeline (the real
//! `crossdock` binary, every simulator, the stores), and its report. Nothing here is
//! timed: speed is what `scripts/bench` measures (README, "Benchmarks"); this checks that
//! the run measures what it says — every order offered reached its store once, was
//! accepted, and its platform heard the accept — and writes its results.

use std::time::Duration;

use crossdock_bench::Options;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_run_sees_every_order_through_the_whole_loop_once_and_reports_it() {
    let out = std::env::temp_dir().join(format!(
        "crossdock-bench-test-{}/results.json",
        std::process::id()
    ));
    let options = Options {
        hub_bin: env!("CARGO_BIN_EXE_crossdock").into(),
        config: crossdock_kit::harness::repo_root().join("config/crossdock.toml"),
        floor_orders: 500,
        step: Duration::from_secs(4),
        rates: vec![30.0],
        start_rate: 30.0,
        soak: None,
        soak_rate: None,
        out: out.clone(),
        keep: false,
    };
    let report = crossdock_bench::run(options).await.expect("the run");
    let summary = crossdock_bench::summary(&report);
    println!("{summary}");
    assert!(
        report.valid(),
        "an order was lost or duplicated:\n{summary}"
    );
    assert_eq!(report.floor.orders, 500, "every floor message consumed");
    assert!(report.floor.per_second > 0.0);
    let step = report
        .steps
        .iter()
        .find(|s| s.name == "fixed")
        .expect("the fixed step");
    let figures = &step.figures;
    assert!(figures.offered >= 100, "30/s for 4 s: {summary}");
    assert_eq!(figures.acked, figures.offered, "{summary}");
    assert_eq!(figures.completed, figures.acked, "{summary}");
    // Every channel but the POS and Dianping (whose platforms have no accept call)
    // heard its accepts: nine channels in turn, seven of them calling.
    assert!(
        figures.accept_to_platform.count * 9 >= figures.completed * 6,
        "the platforms heard the accepts: {summary}"
    );
    assert_eq!(figures.webhook_ack.count, figures.acked);
    assert_eq!(figures.ingest_to_store.count, figures.completed);
    assert!(step.hub_cpu_per_1000 > 0.0 && step.hub_peak_rss_mib > 0.0);
    let written = std::fs::read_to_string(&out).expect("results written");
    let parsed: serde_json::Value = serde_json::from_str(&written).expect("results are JSON");
    assert_eq!(parsed["floor"]["orders"], 500);
    assert!(
        out.with_extension("txt").exists(),
        "the summary beside them"
    );
    let _ = std::fs::remove_dir_all(out.parent().expect("a directory"));
}
