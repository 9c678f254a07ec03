//! `/api/v1/codes`: who may check and redeem a code, for which store, on which channel.
//! (Redemption itself runs in the Dianping adapter's conformance loop.)

use serde_json::json;

use crate::helpers::TestHub;

/// Redeems as store SHA-001.
async fn redeem(hub: &TestHub, body: serde_json::Value) -> (u16, serde_json::Value) {
    hub.post(hub.token("SHA-001"), "/codes/redeem", body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codes_are_redeemed_by_a_store_for_itself_or_by_hq_naming_the_store() {
    let hub = TestHub::start().await;

    let (status, answer) = redeem(
        &hub,
        json!({"channel": "dianping", "code": "1234", "store": "SHA-002"}),
    )
    .await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (403, Some("forbidden")),
        "{answer}"
    );

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

    let response = hub
        .hub
        .access
        .http
        .post(format!("{}/api/v1/codes/redeem", hub.base()))
        .json(&json!({"channel": "dianping", "code": "1234"}))
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), 401, "a code needs a token");
    hub.stop().await;
}
