//! Who may call what under `/api/v1`: one table of every route with its method and its
//! callers, checked against a running hub (no token and a wrong token: 401; another store's
//! token: 403 where the path or body names a store, 404 where it names another store's
//! order, which a store cannot tell from none; a store's token on HQ's endpoints: 403;
//! nothing changed afterwards), and against the hub's source: every `.route(` of
//! `crates/hub/src/http/` must be in the table (or in the short list of routes outside the
//! API), so no endpoint can skip this test.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use crate::helpers::{TestHub, sample_pickup};

/// Who may call an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    /// Any store (what it sees is its own) and HQ.
    Anyone,
    /// The store the path names, and HQ.
    OwnStore,
    /// A store for its own order (another store's answers 404, as if there were none), and
    /// HQ.
    OwnOrder,
    /// A store for the store the body names when that is itself (another: 403), and HQ
    /// naming a store.
    OwnStoreInBody,
    /// HQ only: any store's token answers 403.
    Hq,
    /// A store only: the admin token belongs to no store (400).
    StoreOnly,
}

/// One route and method.
struct Endpoint {
    method: &'static str,
    /// The route as the hub's source writes it, under `/api/v1`.
    route: &'static str,
    /// What is called: `{order}` is an order of [`OWNER`], `{store}` is [`OWNER`],
    /// `{action}` each of [`ACTIONS`].
    call: &'static str,
    who: Who,
}

const fn endpoint(
    method: &'static str,
    route: &'static str,
    call: &'static str,
    who: Who,
) -> Endpoint {
    Endpoint {
        method,
        route,
        call,
        who,
    }
}

/// Every route under `/api/v1` (api.rs, codes.rs, stores.rs, hq.rs, live.rs).
const TABLE: &[Endpoint] = &[
    // api.rs
    endpoint("GET", "/orders", "/orders?limit=500", Who::Anyone),
    endpoint("GET", "/orders/{id}", "/orders/{order}", Who::OwnOrder),
    endpoint(
        "GET",
        "/orders/{id}/events",
        "/orders/{order}/events",
        Who::Hq,
    ),
    endpoint(
        "POST",
        "/orders/{id}/assign",
        "/orders/{order}/assign",
        Who::Hq,
    ),
    endpoint(
        "POST",
        "/orders/{id}/{action}",
        "/orders/{order}/{action}",
        Who::OwnOrder,
    ),
    endpoint("GET", "/attention", "/attention", Who::Hq),
    endpoint("GET", "/stores", "/stores", Who::Hq),
    endpoint("GET", "/stores/me", "/stores/me", Who::StoreOnly),
    endpoint("GET", "/quarantine", "/quarantine?channel=own_app", Who::Hq),
    // codes.rs
    endpoint("POST", "/codes/check", "/codes/check", Who::OwnStoreInBody),
    endpoint(
        "POST",
        "/codes/redeem",
        "/codes/redeem",
        Who::OwnStoreInBody,
    ),
    // stores.rs
    endpoint(
        "GET",
        "/stores/{id}/live",
        "/stores/{store}/live",
        Who::OwnStore,
    ),
    endpoint(
        "POST",
        "/stores/{id}/pause",
        "/stores/{store}/pause",
        Who::OwnStore,
    ),
    endpoint(
        "POST",
        "/stores/{id}/resume",
        "/stores/{store}/resume",
        Who::OwnStore,
    ),
    endpoint(
        "POST",
        "/stores/{id}/availability",
        "/stores/{store}/availability",
        Who::OwnStore,
    ),
    // hq.rs
    endpoint("GET", "/summary", "/summary", Who::Hq),
    endpoint("GET", "/parked", "/parked", Who::Hq),
    endpoint(
        "POST",
        "/orders/{id}/replay",
        "/orders/{order}/replay",
        Who::Hq,
    ),
    endpoint("POST", "/outbox/{id}/replay", "/outbox/1/replay", Who::Hq),
    // live.rs
    endpoint("GET", "/stream", "/stream", Who::Anyone),
];

/// Routes of the HTTP surface outside the API, and why they take no token.
const PUBLIC: &[(&str, &str)] = &[
    (
        "/webhooks/{channel}",
        "platforms; each channel verifies its own signature",
    ),
    ("/webhooks/{channel}/{event}", "platforms, as above"),
    ("/healthz", "operators' liveness probe"),
    ("/readyz", "operators' readiness probe"),
    ("/metrics", "Prometheus, on the internal network"),
    ("/", "redirects to the store console"),
    ("/store", "the store console's page; its data needs a token"),
    ("/hq", "the HQ dashboard's page; its data needs a token"),
    ("/assets/{name}", "the pages' scripts and styles"),
];

/// The actions of `POST /orders/{id}/{action}`.
const ACTIONS: &[&str] = &[
    "accept",
    "reject",
    "preparing",
    "ready",
    "picked-up",
    "delivered",
    "complete",
    "cancel",
];

/// The store whose order and state are at stake, and another store of the chain.
const OWNER: &str = "NYC-001";
const OTHER: &str = "NYC-002";

/// A request's credentials.
#[derive(Debug, Clone, Copy)]
enum Auth<'a> {
    None,
    /// An `Authorization` header as given.
    Header(&'a str),
    Bearer(&'a str),
}

/// One concrete request of an endpoint.
struct Call {
    method: &'static str,
    path: String,
    body: Value,
    who: Who,
}

/// The concrete requests of every row of [`TABLE`] for the order `order_id` of [`OWNER`].
fn calls(order_id: &str) -> Vec<Call> {
    let mut calls = Vec::new();
    for row in TABLE {
        let path = row
            .call
            .replace("{order}", order_id)
            .replace("{store}", OWNER);
        let paths: Vec<String> = if path.contains("{action}") {
            ACTIONS
                .iter()
                .map(|action| path.replace("{action}", action))
                .collect()
        } else {
            vec![path]
        };
        for path in paths {
            // Bodies that pass validation, so what answers is the authorization.
            let body = match row.route {
                "/codes/check" | "/codes/redeem" => {
                    json!({"channel": "dianping", "code": "1234", "store": OWNER})
                }
                "/orders/{id}/{action}" => json!({"reason": "authorization test"}),
                "/orders/{id}/assign" => json!({"store": OTHER}),
                "/stores/{id}/availability" => json!({"unavailable": ["PZ-MARG-L"]}),
                "/stores/{id}/pause" => json!({"minutes": 30}),
                _ => json!({}),
            };
            calls.push(Call {
                method: row.method,
                path,
                body,
                who: row.who,
            });
        }
    }
    calls
}

/// Sends `call` with `auth`; returns the status and the JSON body (`Null` for a stream,
/// which is left unread).
async fn send(hub: &TestHub, call: &Call, auth: Auth<'_>) -> (u16, Value) {
    let url = format!("{}/api/v1{}", hub.base(), call.path);
    let http = &hub.hub.access.http;
    let mut request = match call.method {
        "GET" => http.get(&url),
        "POST" => http.post(&url).json(&call.body),
        other => panic!("no method {other} in the table's calls"),
    };
    request = match auth {
        Auth::None => request,
        Auth::Header(value) => request.header("authorization", value),
        Auth::Bearer(token) => request.bearer_auth(token),
    };
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let streaming = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    if streaming {
        return (status, Value::Null);
    }
    (status, response.json().await.unwrap_or(Value::Null))
}

/// What may change if a refusal let something through: the order as HQ sees it, both
/// stores' live state, what waits for HQ, and the refused requests.
async fn snapshot(hub: &TestHub, order_id: &str) -> Value {
    let admin = hub.admin_token.as_str();
    let mut state = serde_json::Map::new();
    for path in [
        format!("/orders/{order_id}"),
        format!("/stores/{OWNER}/live"),
        format!("/stores/{OTHER}/live"),
        "/attention".to_owned(),
        "/parked".to_owned(),
        "/quarantine?channel=own_app".to_owned(),
        "/quarantine?channel=dianping".to_owned(),
        "/orders?limit=500".to_owned(),
    ] {
        let (status, body) = hub.get(admin, &path).await;
        assert_eq!(status, 200, "{path}: {body}");
        state.insert(path, body);
    }
    Value::Object(state)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_api_endpoint_refuses_missing_wrong_and_other_stores_tokens() {
    let hub = TestHub::start().await;
    // A real order of the owner: an own-app pickup routed to it and handed over.
    let placed = hub.app.place_order(&sample_pickup(OWNER, "USD")).await;
    assert_eq!(placed.answer.status, 202, "{}", placed.answer.body);
    let view = hub.routed_order("own_app", &placed.external_order_id).await;
    assert_eq!(view["store_id"], OWNER);
    let order_id = view["id"].as_str().expect("order id").to_owned();
    hub.delivered_to_store(&order_id).await;
    hub.settled(&order_id).await;
    let before = snapshot(&hub, &order_id).await;

    let owner = hub.token(OWNER).to_owned();
    let other = hub.token(OTHER).to_owned();
    let admin = hub.admin_token.clone();
    let calls = calls(&order_id);
    for call in &calls {
        let what = format!("{} {} ({:?})", call.method, call.path, call.who);
        for (auth, how) in [
            (Auth::None, "no token"),
            (Auth::Bearer("not-a-token"), "a wrong token"),
            (
                Auth::Header(&format!("Basic {owner}")),
                "not a bearer token",
            ),
            (Auth::Bearer(""), "an empty token"),
        ] {
            let (status, body) = send(&hub, call, auth).await;
            assert_eq!(
                (status, &body["error"]),
                (401, &json!("unauthorized")),
                "{what} with {how}: {body}"
            );
        }

        // Another store's token.
        let (status, body) = send(&hub, call, Auth::Bearer(&other)).await;
        match call.who {
            Who::OwnStore | Who::OwnStoreInBody | Who::Hq => assert_eq!(
                (status, &body["error"]),
                (403, &json!("forbidden")),
                "{what} with another store's token: {body}"
            ),
            Who::OwnOrder => assert_eq!(
                (status, &body["error"]),
                (404, &json!("not_found")),
                "{what} with another store's token: {body}"
            ),
            Who::Anyone | Who::StoreOnly => {
                assert_eq!(status, 200, "{what} as {OTHER}: {body}");
                if call.path.starts_with("/orders") {
                    let orders = body["orders"].as_array().expect("orders");
                    assert!(
                        orders.iter().all(|o| o["store_id"] == OTHER),
                        "{what}: {OTHER} sees only its own orders: {body}"
                    );
                }
                if call.path == "/stores/me" {
                    assert_eq!(body["store"]["id"], OTHER, "{what}: {body}");
                }
            }
        }

        // The owner's token: HQ's endpoints stay HQ's.
        if call.who == Who::Hq {
            let (status, body) = send(&hub, call, Auth::Bearer(&owner)).await;
            assert_eq!(
                (status, &body["error"]),
                (403, &json!("forbidden")),
                "{what} with a store's token: {body}"
            );
        }

        // Those who may, read (changes are left alone: nothing may change here).
        if call.method == "GET" {
            if call.who != Who::Hq {
                let (status, body) = send(&hub, call, Auth::Bearer(&owner)).await;
                assert_eq!(status, 200, "{what} as {OWNER}: {body}");
            }
            let (status, body) = send(&hub, call, Auth::Bearer(&admin)).await;
            if call.who == Who::StoreOnly {
                assert_eq!(
                    (status, &body["error"]),
                    (400, &json!("not_a_store")),
                    "{what} as HQ: {body}"
                );
            } else {
                assert_eq!(status, 200, "{what} as HQ: {body}");
            }
        }
    }

    // The owner's order and both stores are as they were; nothing was refused into the
    // quarantine, set aside or put on HQ's list.
    assert_eq!(snapshot(&hub, &order_id).await, before);
    let (_, order) = hub.get(&owner, &format!("/orders/{order_id}")).await;
    assert_eq!(
        (&order["status"], &order["store_id"]),
        (&json!("received"), &json!(OWNER))
    );
    hub.stop().await;
}

/// A `.route(` of the source: its path and the HTTP methods it serves.
#[derive(Debug)]
struct SourceRoute {
    file: String,
    path: String,
    methods: BTreeSet<String>,
}

const METHODS: &[&str] = &[
    "get", "post", "put", "patch", "delete", "head", "options", "any",
];

/// The text from `open` (just past an opening parenthesis) to its closing one.
fn balanced(text: &str, open: usize) -> &str {
    let mut depth = 1usize;
    let mut in_string = false;
    let mut escaped = false;
    for (offset, c) in text[open..].char_indices() {
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return &text[open..open + offset];
                }
            }
            _ => {}
        }
    }
    panic!("unbalanced parentheses after offset {open}");
}

/// The method routers' names called at the top level of a route's second argument
/// (`post(a).get(b)`: post and get; what is inside their parentheses is not looked at).
fn methods_of(arguments: &str) -> BTreeSet<String> {
    let mut methods = BTreeSet::new();
    let mut depth = 0usize;
    let mut word = String::new();
    for c in arguments.chars() {
        match c {
            '(' => {
                if depth == 0 && METHODS.contains(&word.as_str()) {
                    methods.insert(word.to_uppercase());
                }
                depth += 1;
                word.clear();
            }
            ')' => {
                depth = depth.saturating_sub(1);
                word.clear();
            }
            c if c.is_alphanumeric() || c == '_' => word.push(c),
            _ => word.clear(),
        }
    }
    methods
}

/// Every `.route("…", …)` of one source file.
fn routes_in(file: &str, text: &str) -> Vec<SourceRoute> {
    let mut routes = Vec::new();
    let mut from = 0;
    while let Some(found) = text[from..].find(".route(") {
        let open = from + found + ".route(".len();
        let arguments = balanced(text, open);
        let literal = arguments.trim_start();
        let path = literal
            .strip_prefix('"')
            .and_then(|rest| rest.split_once('"'))
            .map(|(path, _)| path.to_owned())
            .unwrap_or_else(|| panic!("{file}: a route whose path is not a literal: {arguments}"));
        let (_, handler) = arguments
            .split_once(',')
            .unwrap_or_else(|| panic!("{file}: route {path} has no handler"));
        routes.push(SourceRoute {
            file: file.to_owned(),
            path,
            methods: methods_of(handler),
        });
        from = open;
    }
    routes
}

/// The modules whose routers `http/mod.rs` nests under `/api/v1`.
fn api_modules(mod_rs: &str) -> BTreeSet<String> {
    let start = mod_rs
        .find(".nest(")
        .expect("http/mod.rs nests the API under /api/v1");
    let arguments = balanced(mod_rs, start + ".nest(".len());
    let (prefix, routers) = arguments.split_once(',').expect("nest(prefix, router)");
    assert_eq!(prefix.trim(), "\"/api/v1\"", "the one nest is the API's");
    // The nested router is either written in place or bound to a name first.
    let routers = match routers.trim() {
        name if name.chars().all(|c| c.is_alphanumeric() || c == '_') => {
            let binding = format!("let {name} =");
            let at = mod_rs
                .find(&binding)
                .unwrap_or_else(|| panic!("http/mod.rs binds `{name}`"));
            let end = mod_rs[at..].find(';').expect("the binding ends") + at;
            &mod_rs[at..end]
        }
        inline => inline,
    };
    let mut modules = BTreeSet::new();
    let mut rest = routers;
    while let Some(at) = rest.find("::router(") {
        let module: String = rest[..at]
            .chars()
            .rev()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        modules.insert(module);
        rest = &rest[at + "::router(".len()..];
    }
    assert!(!modules.is_empty(), "no router nested under /api/v1");
    modules
}

#[test]
fn every_route_of_the_hub_is_in_the_authorization_table_or_outside_the_api() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/http");
    let read = |name: &str| {
        std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("reading {name}: {e}"))
    };
    let nested = api_modules(&read("mod.rs"));
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .expect("crates/hub/src/http")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name.ends_with(".rs"))
        .collect();
    files.sort();
    for module in &nested {
        assert!(
            files.contains(&format!("{module}.rs")),
            "the API nests {module}::router(), but there is no http/{module}.rs"
        );
    }

    let mut table: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for row in TABLE {
        assert!(
            table
                .entry(row.route)
                .or_default()
                .insert(row.method.to_owned()),
            "{} {} is in the table twice",
            row.method,
            row.route
        );
    }
    let mut seen = BTreeSet::new();
    let mut outside = BTreeSet::new();
    for file in &files {
        let module = file.trim_end_matches(".rs");
        for route in routes_in(file, &read(file)) {
            assert!(
                !route.methods.is_empty(),
                "{}: no method found for {}",
                route.file,
                route.path
            );
            if nested.contains(module) {
                let rows = table.get(route.path.as_str()).unwrap_or_else(|| {
                    panic!(
                        "{}: {:?} /api/v1{} is not in the authorization table of tests/e2e/authz.rs: add it, with who may call it",
                        route.file, route.methods, route.path
                    )
                });
                assert_eq!(
                    rows, &route.methods,
                    "{}: /api/v1{}: the table's methods differ from the source's",
                    route.file, route.path
                );
                seen.insert(route.path);
            } else {
                assert!(
                    !route.path.starts_with("/api"),
                    "{}: {} is an API route outside the API's routers",
                    route.file,
                    route.path
                );
                assert!(
                    PUBLIC.iter().any(|(path, _)| *path == route.path),
                    "{}: {} is neither in the authorization table nor a known public route",
                    route.file,
                    route.path
                );
                outside.insert(route.path);
            }
        }
    }
    let stale: Vec<&&str> = table.keys().filter(|r| !seen.contains(**r)).collect();
    assert!(
        stale.is_empty(),
        "routes the hub no longer serves: {stale:?}"
    );
    let gone: Vec<&str> = PUBLIC
        .iter()
        .map(|(path, _)| *path)
        .filter(|path| !outside.contains(*path))
        .collect();
    assert!(
        gone.is_empty(),
        "public routes the hub no longer serves: {gone:?}"
    );
}
