//! `/api/v1/codes`: what a request to check or redeem a code must name (HQ a store, a
//! known channel, a code, a count, a store on that channel, a channel that has codes).
//! Tokens — none, wrong, another store's — are in `authz.rs`; redemption itself runs in
//! the Dianping adapter's conformance loop.

use serde_json::json;

use crate::helpers::TestHub;

/// Redeems as store SHA-001.
async fn redeem(hub: &TestHub, body: serde_json::Value) -> (u16, serde_json::Value) {
    hub.post(hub.token("SHA-001"), "/codes/redeem", body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_requests_must_name_a_store_for_hq_a_known_channel_and_a_valid_code() {
    let hub = TestHub::start().await;

    let (status, answer) = hub
        .post(
            &hub.admin_token,
            "/codes/check",
            json!({"channel": "dianping", "code": "1234"}),
        )
        .await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (400, Some("store_required")),
        "{answer}"
    );

    let (status, answer) = redeem(&hub, json!({"channel": "nowhere", "code": "1234"})).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (400, Some("unknown_channel")),
        "{answer}"
    );

    let (status, answer) = redeem(&hub, json!({"channel": "dianping", "code": "  "})).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (400, Some("bad_code")),
        "{answer}"
    );

    let (status, answer) = redeem(
        &hub,
        json!({"channel": "dianping", "code": "1234", "count": 0}),
    )
    .await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (400, Some("bad_count")),
        "{answer}"
    );

    // A store not on the channel, and a channel that has no codes.
    let (status, answer) = hub
        .post(
            hub.token("NYC-001"),
            "/codes/redeem",
            json!({"channel": "dianping", "code": "1234"}),
        )
        .await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (400, Some("store_not_on_channel")),
        "{answer}"
    );
    let (status, answer) = hub
        .post(
            hub.token("NYC-001"),
            "/codes/check",
            json!({"channel": "uber_eats", "code": "1234"}),
        )
        .await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .unwrap_or_default()
            .contains("no codes"),
        "{answer}"
    );
    hub.stop().await;
}
