//! `crossdock normalize`, the binary, on every registered channel's fixtures: what an ops
//! engineer runs when a platform says "we sent it" and the store says "we never saw it".

use std::process::Command;

use crossdock_kit::{CaseInput, FIXTURE_TIME, load_cases};
use serde_json::Value;

use crate::helpers::repo_root;

fn normalize(args: &[String]) -> (bool, Value) {
    let output = Command::new(env!("CARGO_BIN_EXE_crossdock"))
        .arg("--config")
        .arg(repo_root().join("config/crossdock.toml"))
        .arg("normalize")
        .args(args)
        .env(
            "CROSSDOCK_HTTP__PUBLIC_URL",
            crossdock_kit::FIXTURE_PUBLIC_URL,
        )
        .env("RUST_LOG", "warn")
        .output()
        .expect("run crossdock normalize");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let printed = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "normalize printed no JSON ({e}): {stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output.status.success(), printed)
}

#[test]
fn every_channels_fixtures_normalize_through_the_command() {
    let mut seen = 0;
    for factory in crossdock_hub::channels::factories() {
        let channel = factory.id();
        let dir = repo_root().join("fixtures").join(channel);
        assert!(
            dir.is_dir(),
            "channel {channel} has no fixtures at {}",
            dir.display()
        );
        for case in load_cases(channel, &dir) {
            let mut args = vec![
                "--channel".to_owned(),
                channel.to_owned(),
                "--received-at".to_owned(),
                FIXTURE_TIME.to_owned(),
            ];
            let mut file = |flag: &str, suffix: &str| {
                if let Some(path) = case.file(suffix) {
                    args.push(flag.to_owned());
                    args.push(path.display().to_string());
                }
            };
            file("--headers", ".headers");
            file("--body", ".body");
            file("--fetched", ".fetched.json");
            file("--claim", ".claim.json");
            if let CaseInput::Request { method, url, .. } = &case.input {
                args.extend(["--url".to_owned(), url.clone()]);
                args.extend(["--method".to_owned(), method.to_string()]);
            }
            let (ok, printed) = normalize(&args);
            let expected: Value =
                serde_json::from_slice(&std::fs::read(&case.expected_path).expect("expected file"))
                    .expect("expected JSON");
            match expected.get("error") {
                Some(error) => {
                    assert!(!ok, "{channel} {}: passed a refused case", case.name);
                    assert_eq!(printed.get("error"), Some(error), "{channel} {}", case.name);
                    assert!(
                        printed["reply"]["status"].as_u64().is_some()
                            || case.file(".claim.json").is_some(),
                        "{channel} {}: no platform answer shown: {printed}",
                        case.name
                    );
                }
                None => {
                    assert!(ok, "{channel} {}: refused: {printed}", case.name);
                    assert_eq!(printed, expected, "{channel} {}", case.name);
                }
            }
            seen += 1;
        }
    }
    assert!(seen >= 6, "only {seen} fixtures went through the command");
}

#[test]
fn a_forged_request_exits_non_zero_with_the_platforms_answer() {
    let dir = repo_root().join("fixtures/own_app");
    let case = load_cases("own_app", &dir)
        .into_iter()
        .find(|case| case.name == "delivery_nyc")
        .expect("own_app delivery fixture");
    let scratch =
        std::env::temp_dir().join(format!("crossdock-e2e-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&scratch).expect("scratch");
    let mut body = std::fs::read(case.file(".body").expect("body")).expect("read");
    let middle = body.len() / 2;
    body[middle] ^= 0x01;
    let forged = scratch.join("forged.body");
    std::fs::write(&forged, &body).expect("write");
    let (ok, printed) = normalize(&[
        "--channel".into(),
        "own_app".into(),
        "--headers".into(),
        case.file(".headers")
            .expect("headers")
            .display()
            .to_string(),
        "--body".into(),
        forged.display().to_string(),
        "--received-at".into(),
        FIXTURE_TIME.into(),
    ]);
    let _ = std::fs::remove_dir_all(&scratch);
    assert!(!ok);
    assert_eq!(printed["error"]["kind"], "unauthorized", "{printed}");
    assert_eq!(printed["reply"]["status"], 401, "{printed}");
    // Out of the replay window, the same genuine request is stale, and says by how much.
    let (ok, printed) = normalize(&[
        "--channel".into(),
        "own_app".into(),
        "--headers".into(),
        case.file(".headers")
            .expect("headers")
            .display()
            .to_string(),
        "--body".into(),
        case.file(".body").expect("body").display().to_string(),
    ]);
    assert!(!ok);
    assert_eq!(printed["error"]["kind"], "stale", "{printed}");
}

#[test]
fn a_file_it_cannot_read_exits_2_not_as_a_refusal() {
    let output = Command::new(env!("CARGO_BIN_EXE_crossdock"))
        .arg("--config")
        .arg(repo_root().join("config/crossdock.toml"))
        .args([
            "normalize",
            "--channel",
            "own_app",
            "--body",
            "/nonexistent/body",
        ])
        .env("RUST_LOG", "warn")
        .output()
        .expect("run crossdock normalize");
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty());
    assert!(String::from_utf8_lossy(&output.stderr).contains("/nonexistent/body"));
}

/// The sample chain maps stores only for channels this hub has, and every channel that
/// routes by the platform's store id has stores mapped.
#[test]
fn the_sample_chain_maps_every_channel_and_no_other() {
    let known: Vec<&str> = crossdock_hub::channels::factories()
        .iter()
        .map(|f| f.id())
        .collect();
    let chain = crate::helpers::chain();
    for store in &chain.stores {
        for channel in store.channels.keys() {
            assert!(
                known.contains(&channel.as_str()),
                "{}: unknown channel {channel}",
                store.id
            );
        }
    }
    for channel in known {
        assert!(
            chain
                .stores
                .iter()
                .any(|s| s.channels.contains_key(channel)),
            "no store of the sample chain is mapped for channel {channel}"
        );
    }
}

/// A command about one channel builds only that channel: in production, the POS key is the
/// only secret `store-credential --channel pos` needs, and it derives from it.
#[test]
fn a_command_about_one_channel_needs_only_that_channels_secrets() {
    let run = |master: Option<&str>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_crossdock"));
        command
            .arg("--config")
            .arg(repo_root().join("config/crossdock.toml"))
            .args(["store-credential", "--channel", "pos", "--store", "NYC-001"])
            .env("CROSSDOCK_MODE", "production")
            .env("RUST_LOG", "warn");
        if let Some(master) = master {
            command.env("CROSSDOCK_SECRET_POS_MASTER_KEY", master);
        }
        command.output().expect("run crossdock store-credential")
    };
    let output = run(Some("a-production-master-key"));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let key = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    assert_eq!(
        key,
        crossdock_adapter_pos::store_key(b"a-production-master-key", "NYC-001")
    );
    let output = run(None);
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("CROSSDOCK_SECRET_POS_MASTER_KEY"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
