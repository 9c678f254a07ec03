//! The bad-input corpus: for every channel, requests made from that channel's own valid
//! sample by shared mutations — empty, cut short, wrong types, a required field missing,
//! nested 10,000 deep, not UTF-8, UTF-16, impossible quantities and money, a store or an
//! item the chain does not have, huge but under the body limit, a forged signature,
//! replays — each with the answer the channel must give in its platform's convention,
//! whether it is quarantined (and as what), and whether an order comes of it. A valid
//! order follows every bad request and must be acknowledged and reach its store; every
//! request is answered within [`ANSWER_WITHIN`]; the hub still answers `/readyz` at the end.
//!
//! The corpus is data. [`CASES`] says how each case is made from a sample and what it gets
//! unless a channel says otherwise; each [`Spec`] of [`CHANNELS`] holds only that channel's
//! facts (where its quantity, price and lines are, how its platform signs, how it answers
//! a refusal) and the answers where it differs. The sample is what the channel's simulator
//! sent for a valid order, as the hub kept it (its inbox), or for notify-then-fetch and
//! code channels what the platform answered (Uber's order, Dianping's redemption).

use std::fmt::Write as _;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use crossdock_adapter_deliveroo as deliveroo;
use crossdock_adapter_dianping as dianping;
use crossdock_adapter_doordash as doordash;
use crossdock_adapter_eleme as eleme;
use crossdock_adapter_google as google;
use crossdock_adapter_just_eat as just_eat;
use crossdock_adapter_meituan as meituan;
use crossdock_adapter_own_app as own_app;
use crossdock_adapter_pos as pos;
use crossdock_adapter_uber_eats as uber_eats;
use crossdock_channel::sim::{SampleItem, SampleOrder};
use crossdock_hub::demo::{SimPorts, Sims};
use crossdock_kit::FIXTURE_PUBLIC_URL;
use crossdock_kit::harness::{Hub, WAIT, chain, wait_for};
use crossdock_model::Status;
use rand::Rng;
use serde_json::{Value, json};

use crate::helpers::sample_pickup;

/// Every request of the corpus must be answered within this: a hang is a failure.
const ANSWER_WITHIN: Duration = Duration::from_secs(10);

/// A PLU the sample chain's menu does not have.
const NOT_ON_MENU: &str = "PZ-NOT-ON-MENU";

// ---------------------------------------------------------------------------------------
// The corpus
// ---------------------------------------------------------------------------------------

/// A field of the sample, located per channel by its [`Spec`].
#[derive(Debug, Clone, Copy)]
enum Field {
    /// The first line's quantity.
    Quantity,
    /// The first line's unit price.
    Price,
    /// The list of lines.
    Lines,
    /// A field the order cannot be read without.
    Required,
}

/// How a case is made from the channel's valid sample.
#[derive(Debug, Clone, Copy)]
enum Make {
    /// The sample with fresh ids.
    Valid,
    /// The last valid request again, byte for byte.
    Replay,
    /// The last valid request's body (its ids too), signed again two hours ago.
    ReplayLate,
    /// Signed, then one character of the signature changed.
    Forged,
    /// No body.
    Empty,
    /// Cut at half its length.
    Truncated,
    /// A field set to this JSON text (money written as text where the platform does).
    Set(Field, &'static str),
    /// A field left out.
    Remove(Field),
    /// The lines replaced by arrays nested 10,000 deep.
    Nested,
    /// A line's name in bytes that are not UTF-8.
    NotUtf8,
    /// The whole body in UTF-16 (little-endian, with a byte-order mark).
    Utf16,
    /// The first line repeated until the body is three quarters of the body limit.
    Huge,
    /// Placed on the platform's simulator for a store the chain does not have.
    UnknownStore,
    /// Placed on the platform's simulator with a line the chain's menu does not have.
    UnknownItem,
}

/// The answer a case must get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Acknowledged as the platform expects; one new order, routed to the channel's store.
    Taken,
    /// Acknowledged; nothing new (the platform's retry of a request already taken).
    Replayed,
    /// Acknowledged and recorded as nothing to act on (Ele.me's empty ping).
    Ignored,
    /// Refused at once in the platform's refusal shape for this error kind, quarantined as
    /// that kind; no order.
    Refused(&'static str),
    /// Refused at once with this platform code (where one error kind has several codes).
    RefusedWith(&'static str, i64),
    /// Refused at once in the hub's own shape, `{"error": kind, "message"}`: a body the
    /// channel cannot even read as one of its platform's requests.
    RefusedPlain(&'static str),
    /// Notify-then-fetch: the notification is acknowledged, the fetched order quarantined
    /// as this kind and refused on the platform at once; no order.
    RefusedAfterFetch(&'static str),
    /// Acknowledged and stored, then rejected by the router for this reason (a store or an
    /// item the chain does not have) before any store sees it; the platform is told.
    Rejected(&'static str),
    /// A store's code request refused by the hub's API (status, error), not quarantined: it
    /// is the store's input, not the platform's.
    ApiRefused(u16, &'static str),
}

struct Case {
    name: &'static str,
    make: Make,
    /// The answer, unless the channel's [`Spec::answers`] says otherwise.
    expect: Expect,
}

const fn case(name: &'static str, make: Make, expect: Expect) -> Case {
    Case { name, make, expect }
}

const MALFORMED: Expect = Expect::Refused("malformed");
const UNACCEPTABLE: Expect = Expect::Refused("unacceptable_order");

/// Every case, in the order it runs (the replays follow the valid request they repeat).
const CASES: &[Case] = &[
    case("valid", Make::Valid, Expect::Taken),
    case("replayed", Make::Replay, Expect::Replayed),
    case("replayed_late", Make::ReplayLate, Expect::Replayed),
    case(
        "forged_signature",
        Make::Forged,
        Expect::Refused("unauthorized"),
    ),
    case("empty_body", Make::Empty, MALFORMED),
    case("truncated", Make::Truncated, MALFORMED),
    case(
        "wrong_type_quantity",
        Make::Set(Field::Quantity, r#""two""#),
        MALFORMED,
    ),
    case(
        "wrong_type_lines",
        Make::Set(Field::Lines, r#"{"not":"a list"}"#),
        MALFORMED,
    ),
    case("missing_required", Make::Remove(Field::Required), MALFORMED),
    case("nested_10000_deep", Make::Nested, MALFORMED),
    case("not_utf8", Make::NotUtf8, MALFORMED),
    case("utf16", Make::Utf16, MALFORMED),
    case(
        "quantity_negative",
        Make::Set(Field::Quantity, "-1"),
        UNACCEPTABLE,
    ),
    case(
        "quantity_zero",
        Make::Set(Field::Quantity, "0"),
        UNACCEPTABLE,
    ),
    case(
        "quantity_i64_max",
        Make::Set(Field::Quantity, "9223372036854775807"),
        UNACCEPTABLE,
    ),
    case(
        "quantity_1e30",
        Make::Set(Field::Quantity, "1e30"),
        MALFORMED,
    ),
    case(
        "price_negative",
        Make::Set(Field::Price, "-1"),
        UNACCEPTABLE,
    ),
    case(
        "price_i64_max",
        Make::Set(Field::Price, "9223372036854775807"),
        UNACCEPTABLE,
    ),
    case("price_1e400", Make::Set(Field::Price, "1e400"), MALFORMED),
    case(
        "price_not_a_number",
        Make::Set(Field::Price, r#""12.5abc""#),
        MALFORMED,
    ),
    case(
        "unknown_store",
        Make::UnknownStore,
        Expect::Rejected("unknown_store"),
    ),
    case(
        "unknown_item",
        Make::UnknownItem,
        Expect::Rejected("unknown_item"),
    ),
    case("huge_under_limit", Make::Huge, Expect::Taken),
];

// ---------------------------------------------------------------------------------------
// The channels: only their facts
// ---------------------------------------------------------------------------------------

/// How a channel's orders reach the hub, and so what the corpus's document is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    /// A webhook carrying the order: the document is its body.
    Webhook,
    /// A signed notification, then the order fetched from the platform (Uber Eats): the
    /// document is the platform's answer to the fetch.
    Fetch,
    /// A code the store redeems through the hub's API (Dianping): the document is the
    /// platform's answer to the redemption, whose code is at `code`; the quantity is the
    /// store's `count`.
    Counter { code: &'static str },
}

/// How the document is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Codec {
    Json,
    /// `application/x-www-form-urlencoded`, values possibly JSON text (Meituan).
    Form,
}

/// Where the signature is, for forging it.
#[derive(Debug, Clone, Copy)]
enum Signature {
    Header(&'static str),
    /// A query parameter (Meituan signs into the query).
    Query(&'static str),
    /// A field of the JSON body (Ele.me).
    BodyField(&'static str),
    /// The store's API token (code channels).
    Token,
}

/// One channel's facts. Paths are dot-separated keys and array indexes; they go into
/// strings that hold JSON (Meituan's `detail`, Ele.me's `message`).
struct Spec {
    id: &'static str,
    transport: Transport,
    codec: Codec,
    /// The webhook's path under the hub.
    path: &'static str,
    /// Ids made fresh for every case (dedupe keys and the order's id).
    ids: &'static [&'static str],
    quantity: &'static str,
    price: &'static str,
    /// Money is written as JSON strings (Google's `units`).
    money_as_text: bool,
    lines: &'static str,
    name: &'static str,
    required: &'static str,
    signature: Signature,
    /// Signs a request as the platform does, at a time.
    sign: fn(&mut Request, DateTime<Utc>),
    /// The platform's acknowledgement.
    ack: fn(u16, &Value) -> bool,
    /// The answer to a refusal of an error kind: status and what the body must contain
    /// (`"*"`: any string).
    refusal: fn(&'static str, Option<i64>) -> (u16, Value),
    /// The channel's id of a store the chain does not have.
    unknown_store: &'static str,
    /// The platform hears of an order the hub rejects (a store's own POS hears nothing).
    told: bool,
    /// Answers that differ from [`CASES`]' and why, by case name.
    answers: &'static [(&'static str, Expect)],
}

impl Spec {
    fn expect(&self, case: &Case) -> Expect {
        let expect = self
            .answers
            .iter()
            .find(|(name, _)| *name == case.name)
            .map_or(case.expect, |(_, expect)| *expect);
        match (self.transport, case.make, expect) {
            // The notification is fine: what is wrong is the order the hub fetches.
            (Transport::Fetch, make, Expect::Refused(kind)) if !matches!(make, Make::Forged) => {
                Expect::RefusedAfterFetch(kind)
            }
            _ => expect,
        }
    }

    fn field(&self, field: Field) -> &'static str {
        match field {
            Field::Quantity => self.quantity,
            Field::Price => self.price,
            Field::Lines => self.lines,
            Field::Required => self.required,
        }
    }
}

/// A path under the order of a Google submit.
macro_rules! google_order {
    ($path:literal) => {
        concat!(
            "inputs.0.arguments.0.transactionDecisionValue.order.",
            $path
        )
    };
}

/// Answers of the channels whose signature is bound to a time: a late replay is stale.
const STALE_REPLAY: (&str, Expect) = ("replayed_late", Expect::Refused("stale"));

static CHANNELS: &[Spec] = &[
    Spec {
        id: "own_app",
        transport: Transport::Webhook,
        codec: Codec::Json,
        path: "/webhooks/own_app",
        ids: &["event_id", "order.id"],
        quantity: "order.items.0.quantity",
        price: "order.items.0.unit_price",
        money_as_text: false,
        lines: "order.items",
        name: "order.items.0.name",
        required: "order.currency",
        signature: Signature::Header(own_app::SIGNATURE_HEADER),
        sign: sign_own_app,
        ack: |status, body| status == 202 && body["status"] == "received",
        refusal: refusal_common,
        unknown_store: "NYC-999",
        told: true,
        answers: &[STALE_REPLAY],
    },
    Spec {
        id: "pos",
        transport: Transport::Webhook,
        codec: Codec::Json,
        path: "/webhooks/pos",
        ids: &["event_id", "order.number"],
        quantity: "order.lines.0.quantity",
        price: "order.lines.0.unit_price",
        money_as_text: false,
        lines: "order.lines",
        name: "order.lines.0.name",
        required: "order.currency",
        signature: Signature::Header(pos::SIGNATURE_HEADER),
        sign: sign_pos,
        ack: |status, body| status == 202 && body["duplicate"].is_boolean(),
        refusal: refusal_common,
        unknown_store: "NYC-999",
        told: false,
        answers: &[
            STALE_REPLAY,
            // A sale the store already made goes to it as it is, menu or not.
            ("unknown_item", Expect::Taken),
        ],
    },
    Spec {
        id: "uber_eats",
        transport: Transport::Fetch,
        codec: Codec::Json,
        path: "/webhooks/uber_eats",
        ids: &["id", "event_id"],
        quantity: "cart.items.0.quantity",
        price: "cart.items.0.price.base_unit_price.amount",
        money_as_text: false,
        lines: "cart.items",
        name: "cart.items.0.title",
        required: "cart",
        signature: Signature::Header(uber_eats::SIGNATURE_HEADER),
        sign: sign_uber_eats,
        ack: |status, body| status == 200 && body.is_null(),
        refusal: refusal_common,
        unknown_store: "00000000-0000-4000-8000-000000000999",
        told: true,
        answers: &[],
    },
    Spec {
        id: "doordash",
        transport: Transport::Webhook,
        codec: Codec::Json,
        path: "/webhooks/doordash",
        ids: &["order.id"],
        quantity: "order.categories.0.items.0.quantity",
        price: "order.categories.0.items.0.price",
        money_as_text: false,
        lines: "order.categories.0.items",
        name: "order.categories.0.items.0.name",
        required: "order.subtotal",
        signature: Signature::Header("authorization"),
        sign: sign_doordash,
        ack: |status, body| status == 202 && body.is_null(),
        refusal: refusal_doordash,
        unknown_store: "xd-nyc-999",
        told: true,
        answers: &[
            // Money is read as decimal text: text that is not a number is an amount that
            // cannot be, like a fraction of a cent.
            ("price_not_a_number", UNACCEPTABLE),
        ],
    },
    Spec {
        id: "deliveroo",
        transport: Transport::Webhook,
        codec: Codec::Json,
        path: "/webhooks/deliveroo",
        ids: &["body.order.id"],
        quantity: "body.order.items.0.quantity",
        price: "body.order.items.0.unit_price.fractional",
        money_as_text: false,
        lines: "body.order.items",
        name: "body.order.items.0.name",
        required: "body.order.id",
        signature: Signature::Header(deliveroo::SIGNATURE_HEADER),
        sign: sign_deliveroo,
        ack: |status, body| status == 200 && body.is_null(),
        refusal: refusal_common,
        unknown_store: "999999",
        told: true,
        answers: &[],
    },
    Spec {
        id: "meituan",
        transport: Transport::Webhook,
        codec: Codec::Form,
        path: "/webhooks/meituan/order",
        ids: &["order_id", "wm_order_id_view"],
        quantity: "detail.0.quantity",
        price: "detail.0.price",
        money_as_text: false,
        lines: "detail",
        name: "detail.0.food_name",
        required: "order_id",
        signature: Signature::Query(meituan::sign::SIG),
        sign: sign_meituan,
        ack: |status, body| status == 200 && *body == json!({"data": "ok"}),
        refusal: refusal_meituan,
        unknown_store: "sh_nowhere_999",
        told: true,
        answers: &[
            // `app_id`, `timestamp` and `sig` travel in the body with the order: a body
            // without them is 701, "missing parameter", before it is read.
            ("empty_body", Expect::RefusedWith("unauthorized", 701)),
            ("truncated", Expect::RefusedWith("unauthorized", 701)),
            ("utf16", Expect::RefusedWith("unauthorized", 701)),
            ("missing_required", Expect::RefusedWith("malformed", 701)),
            // Lines that are arrays, not dishes: the dish's name is missing.
            ("nested_10000_deep", Expect::RefusedWith("malformed", 701)),
            ("price_1e400", UNACCEPTABLE),
            ("price_not_a_number", UNACCEPTABLE),
        ],
    },
    Spec {
        id: "eleme",
        transport: Transport::Webhook,
        codec: Codec::Json,
        path: "/webhooks/eleme",
        ids: &["requestId", "message.id"],
        quantity: "message.groups.0.items.0.quantity",
        price: "message.groups.0.items.0.price",
        money_as_text: false,
        lines: "message.groups.0.items",
        name: "message.groups.0.items.0.name",
        required: "message.totalPrice",
        signature: Signature::BodyField("signature"),
        sign: sign_eleme,
        ack: |status, body| status == 200 && *body == json!({"message": "ok"}),
        refusal: refusal_eleme,
        unknown_store: "599999999",
        told: true,
        answers: &[
            // An empty body is Ele.me checking the URL: answered ok, nothing to act on.
            ("empty_body", Expect::Ignored),
            // The signature is a field of the body: a body that is not the signed
            // envelope cannot be authenticated.
            ("truncated", Expect::Refused("unauthorized")),
            ("not_utf8", Expect::Refused("unauthorized")),
            ("utf16", Expect::Refused("unauthorized")),
            ("price_1e400", UNACCEPTABLE),
        ],
    },
    Spec {
        id: "google",
        transport: Transport::Webhook,
        codec: Codec::Json,
        path: "/webhooks/google",
        ids: &[google_order!("googleOrderId")],
        quantity: google_order!("finalOrder.cart.lineItems.0.quantity"),
        price: google_order!("finalOrder.cart.lineItems.0.price.amount.units"),
        money_as_text: true,
        lines: google_order!("finalOrder.cart.lineItems"),
        name: google_order!("finalOrder.cart.lineItems.0.name"),
        required: google_order!("finalOrder.cart.merchant"),
        signature: Signature::Header("authorization"),
        sign: sign_google,
        ack: |status, body| status == 200 && google_state(body) == Some("CREATED"),
        refusal: refusal_google,
        unknown_store: "crossdockpizza-nyc-999",
        told: true,
        answers: &[
            STALE_REPLAY,
            // Not a Google request at all (no intent or order id can be read): 400. What
            // reads as a submit is answered 200 with a REJECTED order update.
            ("empty_body", Expect::RefusedPlain("malformed")),
            ("truncated", Expect::RefusedPlain("malformed")),
            ("nested_10000_deep", Expect::RefusedPlain("malformed")),
            ("not_utf8", Expect::RefusedPlain("malformed")),
            ("utf16", Expect::RefusedPlain("malformed")),
            // Google sends line totals: no whole unit price divides them.
            ("quantity_i64_max", MALFORMED),
            // `units` -1 with positive `nanos`: an amount Google cannot send.
            ("price_negative", MALFORMED),
            ("price_1e400", UNACCEPTABLE),
            ("price_not_a_number", UNACCEPTABLE),
        ],
    },
    Spec {
        id: "dianping",
        transport: Transport::Counter {
            code: "data.0.receipt_code",
        },
        codec: Codec::Json,
        path: "/api/v1/codes/redeem",
        ids: &["data.0.order_id"],
        quantity: "count",
        price: "data.0.deal_price",
        money_as_text: false,
        lines: "data",
        name: "data.0.deal_title",
        required: "data.0.deal_price",
        signature: Signature::Token,
        sign: |_, _| {},
        ack: |status, body| status == 200 && body["external_order_id"].is_string(),
        refusal: |kind, _| (422, json!({"error": kind, "message": "*"})),
        unknown_store: "nowhere0shop0uuid0000000",
        told: true,
        answers: &[
            // The corpus's inputs here are the store's code requests and Dianping's
            // answers to them; a store's request is refused by the API, not quarantined.
            ("forged_signature", Expect::ApiRefused(401, "unauthorized")),
            ("wrong_type_quantity", Expect::ApiRefused(400, "bad_body")),
            ("quantity_negative", Expect::ApiRefused(400, "bad_body")),
            ("quantity_zero", Expect::ApiRefused(400, "bad_count")),
            ("quantity_i64_max", Expect::ApiRefused(400, "bad_body")),
            ("quantity_1e30", Expect::ApiRefused(400, "bad_body")),
            ("price_1e400", UNACCEPTABLE),
            ("price_not_a_number", UNACCEPTABLE),
            // A voucher sold for another shop: Dianping refuses the redemption; the store
            // is told why, and HQ keeps Dianping's answer.
            ("unknown_store", Expect::Refused("platform")),
            // A deal is not a menu item (no PLU unless HQ maps one): the voucher is eaten.
            ("unknown_item", Expect::Taken),
            // The same voucher thousands of times over.
            ("huge_under_limit", MALFORMED),
        ],
    },
    Spec {
        id: "just_eat",
        transport: Transport::Webhook,
        codec: Codec::Json,
        path: "/webhooks/just_eat",
        ids: &["id", "third_party_order_reference"],
        quantity: "items.0.quantity",
        price: "items.0.price",
        money_as_text: false,
        lines: "items",
        name: "items.0.name",
        required: "payment",
        signature: Signature::Header(just_eat::SIGNATURE_HEADER),
        sign: sign_just_eat,
        ack: |status, body| status == 202 && body.is_null(),
        refusal: refusal_common,
        unknown_store: "cdp-ldn-999",
        told: true,
        answers: &[
            // The adapter reads JET's optional quantity itself.
            ("quantity_negative", MALFORMED),
            ("quantity_zero", MALFORMED),
        ],
    },
];

/// The status the hub answers an error kind with.
fn status_of(kind: &str) -> u16 {
    match kind {
        "unauthorized" | "stale" => 401,
        _ => 400,
    }
}

/// `{"error": kind, "message": …}` (the hub's own protocols, Uber, Deliveroo, Just Eat).
fn refusal_common(kind: &'static str, _code: Option<i64>) -> (u16, Value) {
    (status_of(kind), json!({"error": kind, "message": "*"}))
}

/// DoorDash: `{"code": kind, "message": …}`.
fn refusal_doordash(kind: &'static str, _code: Option<i64>) -> (u16, Value) {
    (status_of(kind), json!({"code": kind, "message": "*"}))
}

/// Meituan: `{"data": "ng", "error": {"code", "msg"}}`; 703 signature, 700 parameters (701
/// where a parameter is missing: [`Expect::RefusedWith`]).
fn refusal_meituan(kind: &'static str, code: Option<i64>) -> (u16, Value) {
    let code = code.unwrap_or(match kind {
        "unauthorized" | "stale" => 703,
        _ => 700,
    });
    (
        status_of(kind),
        json!({"data": "ng", "error": {"code": code, "msg": "*"}}),
    )
}

/// Ele.me: `{"error": {"code", "message"}}`.
fn refusal_eleme(kind: &'static str, _code: Option<i64>) -> (u16, Value) {
    let code = match kind {
        "unauthorized" => "INVALID_SIGNATURE",
        "stale" => "INVALID_TIMESTAMP",
        _ => "VALIDATION_FAILED",
    };
    (
        status_of(kind),
        json!({"error": {"code": code, "message": "*"}}),
    )
}

/// Google: a bad JWT is 401; a submitted order the hub cannot take is 200 with a
/// `REJECTED` order update (Google shows the customer the rejection).
fn refusal_google(kind: &'static str, code: Option<i64>) -> (u16, Value) {
    match kind {
        "unauthorized" | "stale" => refusal_common(kind, code),
        _ => (
            200,
            json!({"finalResponse": {"richResponse": {"items": [
                {"structuredResponse": {"orderUpdate": {"orderState": {"state": "REJECTED"}, "rejectionInfo": {"reason": "*"}}}}
            ]}}}),
        ),
    }
}

/// The state of the order update in a Google submit answer.
fn google_state(body: &Value) -> Option<&str> {
    body.pointer(
        "/finalResponse/richResponse/items/0/structuredResponse/orderUpdate/orderState/state",
    )
    .and_then(Value::as_str)
}

// ---------------------------------------------------------------------------------------
// Signing as each platform does
// ---------------------------------------------------------------------------------------

/// A request to the hub.
#[derive(Debug, Clone)]
struct Request {
    path: String,
    query: Option<String>,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn set(&mut self, name: &str, value: &str) {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers.push((name.to_owned(), value.to_owned()));
    }
}

fn sign_own_app(request: &mut Request, at: DateTime<Utc>) {
    let secret = own_app::DEV_SIGNING_SECRET.as_bytes();
    for (name, value) in own_app::signed_headers(secret, at.timestamp(), &request.body) {
        request.set(&name, &value);
    }
}

fn sign_pos(request: &mut Request, at: DateTime<Utc>) {
    let store = request
        .header(pos::STORE_HEADER)
        .unwrap_or_default()
        .to_owned();
    let key = pos::store_key(pos::DEV_MASTER_KEY.as_bytes(), &store);
    for (name, value) in pos::signed_headers(&key, &store, at.timestamp(), &request.body) {
        request.set(&name, &value);
    }
}

fn sign_uber_eats(request: &mut Request, _at: DateTime<Utc>) {
    let signature = crossdock_channel::signature::hmac_sha256_hex(
        uber_eats::DEV_CLIENT_SECRET.as_bytes(),
        &[&request.body],
    );
    request.set(uber_eats::SIGNATURE_HEADER, &signature);
}

fn sign_doordash(request: &mut Request, _at: DateTime<Utc>) {
    request.set("authorization", doordash::DEV_WEBHOOK_AUTHORIZATION);
}

/// A fresh sequence GUID each time: Deliveroo's delivery id.
fn sign_deliveroo(request: &mut Request, _at: DateTime<Utc>) {
    let guid = uuid::Uuid::new_v4().to_string();
    let signature = deliveroo::sign(
        deliveroo::DEV_WEBHOOK_SECRET.as_bytes(),
        &guid,
        &request.body,
    );
    request.set(deliveroo::GUID_HEADER, &guid);
    request.set(deliveroo::SIGNATURE_HEADER, &signature);
}

/// Meituan signs the decoded parameters with the callback URL; `timestamp` and `sig` go
/// into the query, the body stays as it is.
fn sign_meituan(request: &mut Request, at: DateTime<Utc>) {
    use meituan::sign::{SIG, TIMESTAMP, decode_form, encode_form, sign};
    let url = format!("{FIXTURE_PUBLIC_URL}{}", request.path);
    let timestamp = at.timestamp().to_string();
    let mut params = decode_form(&request.body);
    params.push((TIMESTAMP.to_owned(), timestamp.clone()));
    let sig = sign(&url, &params, meituan::DEV_APP_SECRET);
    request.query = Some(encode_form(&[
        (TIMESTAMP.to_owned(), timestamp),
        (SIG.to_owned(), sig),
    ]));
}

/// Ele.me's signature is a field of the body: a body that is not its envelope cannot be
/// signed and goes as it is.
fn sign_eleme(request: &mut Request, at: DateTime<Utc>) {
    let Ok(envelope) = serde_json::from_slice::<Value>(&request.body) else {
        return;
    };
    let text = |key: &str| match &envelope[key] {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    };
    let (Some(kind), Some(message), Some(shop), Some(request_id), Some(app), Some(user)) = (
        envelope["type"].as_i64(),
        text("message"),
        text("shopId"),
        text("requestId"),
        envelope["appId"].as_u64(),
        envelope["userId"].as_u64(),
    ) else {
        return;
    };
    request.body = eleme::simulator::signed_push(
        kind,
        &message,
        &shop,
        &request_id,
        at.timestamp_millis(),
        app,
        user,
        eleme::DEV_APP_SECRET,
    );
}

fn sign_google(request: &mut Request, at: DateTime<Utc>) {
    let authorization =
        google::simulator::dev_authorization(at).expect("the development key signs");
    request.set("authorization", &authorization);
}

fn sign_just_eat(request: &mut Request, at: DateTime<Utc>) {
    let value = just_eat::simulator::hash_header(
        just_eat::DEV_WEBHOOK_SECRET,
        &request.body,
        at.timestamp_millis(),
    );
    request.set(just_eat::SIGNATURE_HEADER, &value);
}

/// One character of `text` changed, in its middle.
fn corrupt(text: &str) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    let middle = chars.len() / 2;
    if let Some(c) = chars.get_mut(middle) {
        *c = if *c == 'a' { 'b' } else { 'a' };
    }
    chars.into_iter().collect()
}

/// The request with its signature changed where the channel carries it.
fn forge(spec: &Spec, request: &mut Request) {
    match spec.signature {
        Signature::Header(name) => {
            let value = request.header(name).map(corrupt).unwrap_or_default();
            request.set(name, &value);
        }
        Signature::Query(name) => {
            let params =
                meituan::sign::decode_form(request.query.as_deref().unwrap_or("").as_bytes());
            let forged: Vec<(String, String)> = params
                .into_iter()
                .map(|(k, v)| if k == name { (k, corrupt(&v)) } else { (k, v) })
                .collect();
            request.query = Some(meituan::sign::encode_form(&forged));
        }
        Signature::BodyField(name) => {
            let mut envelope: Value = serde_json::from_slice(&request.body).expect("a JSON body");
            let value = envelope[name].as_str().map(corrupt).unwrap_or_default();
            envelope[name] = Value::String(value);
            request.body = serde_json::to_vec(&envelope).expect("JSON");
        }
        Signature::Token => {}
    }
}

// ---------------------------------------------------------------------------------------
// Changing documents
// ---------------------------------------------------------------------------------------

/// A change at a path.
#[derive(Debug, Clone, Copy)]
enum Edit<'a> {
    /// Set to this JSON text (which need not be JSON a parser takes: `1e400`, deep nesting).
    Set(&'a str),
    Remove,
    /// The array's first element, `n` times.
    Repeat(usize),
}

/// Where raw JSON text goes once the document is written.
const HOLE: &str = "@@bad-input-hole@@";

/// Marks the place of bytes that are not UTF-8 (letters only: no encoding changes it).
const NOT_UTF8_MARK: &str = "XNOTUTF8X";

fn decode(codec: Codec, bytes: &[u8]) -> Result<Value, String> {
    match codec {
        Codec::Json => serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}")),
        Codec::Form => Ok(Value::Object(
            meituan::sign::decode_form(bytes)
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect(),
        )),
    }
}

/// `value` as JSON text with `raw` in the hole.
fn write_json(value: &Value, raw: Option<&str>) -> String {
    let text = value.to_string();
    match raw {
        Some(raw) => text.replacen(&format!("\"{HOLE}\""), raw, 1),
        None => text,
    }
}

fn encode(codec: Codec, value: &Value, raw: Option<&str>) -> Vec<u8> {
    match codec {
        Codec::Json => write_json(value, raw).into_bytes(),
        Codec::Form => {
            let pairs: Vec<(String, String)> = value
                .as_object()
                .into_iter()
                .flatten()
                .map(|(key, value)| {
                    let text = match (value, raw) {
                        (Value::String(hole), Some(raw)) if hole == HOLE => {
                            serde_json::from_str::<String>(raw).unwrap_or_else(|_| raw.to_owned())
                        }
                        (Value::String(text), _) => text.clone(),
                        (other, _) => other.to_string(),
                    };
                    (key.clone(), text)
                })
                .collect();
            meituan::sign::encode_form(&pairs).into_bytes()
        }
    }
}

fn child<'v>(value: &'v mut Value, key: &str) -> Result<&'v mut Value, String> {
    match value {
        Value::Object(map) => map.get_mut(key).ok_or_else(|| format!("no field `{key}`")),
        Value::Array(items) => key
            .parse::<usize>()
            .ok()
            .and_then(|index| items.get_mut(index))
            .ok_or_else(|| format!("no element `{key}`")),
        _ => Err(format!("`{key}` under a scalar")),
    }
}

/// The first element `n` times, in an array or in a string holding one.
fn repeat_first(value: &mut Value, n: usize) -> Result<(), String> {
    if let Value::String(text) = value {
        let mut inner: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        repeat_first(&mut inner, n)?;
        *text = inner.to_string();
        return Ok(());
    }
    let items = value.as_array_mut().ok_or("not an array")?;
    let first = items.first().cloned().ok_or("an empty array")?;
    *items = vec![first; n];
    Ok(())
}

/// Applies `change` at `path`; returns the raw text for the hole of `value`'s level.
fn edit(value: &mut Value, path: &[&str], change: Edit<'_>) -> Result<Option<String>, String> {
    if let Value::String(text) = value {
        // A string holding JSON: change it inside and write it back.
        let mut inner: Value = serde_json::from_str(text)
            .map_err(|e| format!("{path:?} is under a string that is not JSON: {e}"))?;
        let raw = edit(&mut inner, path, change)?;
        *text = write_json(&inner, raw.as_deref());
        return Ok(None);
    }
    let (key, rest) = path.split_first().ok_or("an empty path")?;
    if !rest.is_empty() {
        return edit(child(value, key)?, rest, change);
    }
    match change {
        Edit::Set(raw) => {
            match value {
                Value::Object(map) => {
                    map.insert((*key).to_owned(), Value::String(HOLE.to_owned()));
                }
                _ => *child(value, key)? = Value::String(HOLE.to_owned()),
            }
            Ok(Some(raw.to_owned()))
        }
        Edit::Remove => {
            match value {
                Value::Object(map) => {
                    map.remove(*key)
                        .ok_or_else(|| format!("no field `{key}`"))?;
                }
                Value::Array(items) => {
                    let index: usize = key.parse().map_err(|_| format!("not an index: {key}"))?;
                    if index >= items.len() {
                        return Err(format!("no element {index}"));
                    }
                    items.remove(index);
                }
                _ => return Err(format!("`{key}` under a scalar")),
            }
            Ok(None)
        }
        Edit::Repeat(n) => {
            repeat_first(child(value, key)?, n)?;
            Ok(None)
        }
    }
}

/// The document with `change` at `path`.
fn edited(codec: Codec, document: &[u8], path: &str, change: Edit<'_>) -> Vec<u8> {
    let mut value = decode(codec, document).expect("the sample decodes");
    let segments: Vec<&str> = path.split('.').collect();
    let raw = edit(&mut value, &segments, change)
        .unwrap_or_else(|e| panic!("changing `{path}` of the sample: {e}"));
    encode(codec, &value, raw.as_deref())
}

fn replace_bytes(haystack: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut rest = haystack;
    while let Some(at) = rest.windows(needle.len()).position(|w| w == needle) {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(with);
        rest = &rest[at + needle.len()..];
    }
    out.extend_from_slice(rest);
    out
}

/// The document a case makes (for [`Make`]s that change it).
fn mutate(spec: &Spec, document: &[u8], make: Make, limit: usize) -> Vec<u8> {
    let codec = spec.codec;
    match make {
        Make::Empty => Vec::new(),
        Make::Truncated => document[..document.len() / 2].to_vec(),
        Make::Utf16 => {
            let text = std::str::from_utf8(document).expect("the sample is UTF-8");
            let mut bytes = vec![0xFF, 0xFE];
            bytes.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
            bytes
        }
        Make::NotUtf8 => {
            let marked = edited(
                codec,
                document,
                spec.name,
                Edit::Set(&format!("\"{NOT_UTF8_MARK}\"")),
            );
            // Latin-1 "Crème", then bytes no encoding of text has.
            replace_bytes(&marked, NOT_UTF8_MARK.as_bytes(), b"Cr\xE8me \xFF\xFE")
        }
        Make::Set(field, raw) => {
            let quoted;
            let raw =
                if spec.money_as_text && matches!(field, Field::Price) && !raw.starts_with('"') {
                    quoted = format!("\"{raw}\"");
                    quoted.as_str()
                } else {
                    raw
                };
            edited(codec, document, spec.field(field), Edit::Set(raw))
        }
        Make::Remove(field) => edited(codec, document, spec.field(field), Edit::Remove),
        Make::Nested => {
            let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
            edited(codec, document, spec.lines, Edit::Set(&deep))
        }
        Make::Huge => {
            let budget = limit * 3 / 4;
            let once = edited(codec, document, spec.lines, Edit::Repeat(1)).len();
            let twice = edited(codec, document, spec.lines, Edit::Repeat(2)).len();
            let n = (budget - once) / (twice - once).max(1) + 1;
            let huge = edited(codec, document, spec.lines, Edit::Repeat(n));
            assert!(huge.len() <= limit, "{}: {} bytes", spec.id, huge.len());
            huge
        }
        Make::Valid
        | Make::Replay
        | Make::ReplayLate
        | Make::Forged
        | Make::UnknownStore
        | Make::UnknownItem => document.to_vec(),
    }
}

/// `text` with its digits and hex letters drawn afresh: an id of the same shape.
fn scramble(text: &str) -> String {
    let mut rng = rand::rng();
    let fresh: String = text
        .chars()
        .enumerate()
        .map(|(i, c)| match c {
            '0'..='9' if i == 0 => char::from(b'1' + rng.random_range(0..9u8)),
            '0'..='9' => char::from(b'0' + rng.random_range(0..10u8)),
            'a'..='f' => char::from(b'a' + rng.random_range(0..6u8)),
            'A'..='F' => char::from(b'A' + rng.random_range(0..6u8)),
            other => other,
        })
        .collect();
    if fresh == text {
        format!("{text}9")
    } else {
        fresh
    }
}

/// The values at `paths` of a document, as text.
fn values_at(codec: Codec, document: &[u8], paths: &[&str]) -> Vec<String> {
    let value = decode(codec, document).expect("the sample decodes");
    paths
        .iter()
        .filter_map(|path| {
            let mut at = value.clone();
            for key in path.split('.') {
                if let Value::String(text) = &at
                    && let Ok(inner) = serde_json::from_str::<Value>(text)
                    && (inner.is_object() || inner.is_array())
                {
                    at = inner;
                }
                at = match at {
                    Value::Object(mut map) => map.remove(key)?,
                    Value::Array(mut items) => {
                        let index: usize = key.parse().ok()?;
                        (index < items.len()).then(|| items.swap_remove(index))?
                    }
                    _ => return None,
                };
            }
            match at {
                Value::String(text) => Some(text),
                Value::Number(number) => Some(number.to_string()),
                _ => None,
            }
        })
        .collect()
}

/// Fresh ids for a case: every old id replaced wherever it is written.
#[derive(Clone)]
struct Renames(Vec<(String, String)>);

impl Renames {
    fn fresh(ids: &[String]) -> Renames {
        Renames(ids.iter().map(|id| (id.clone(), scramble(id))).collect())
    }

    fn apply(&self, document: &[u8]) -> Vec<u8> {
        self.0.iter().fold(document.to_vec(), |bytes, (old, new)| {
            replace_bytes(&bytes, old.as_bytes(), new.as_bytes())
        })
    }

    fn new_ids(&self) -> Vec<String> {
        self.0.iter().map(|(_, new)| new.clone()).collect()
    }
}

/// Whether `actual` holds everything of `expected` (objects: these keys; arrays: these
/// elements first; `"*"`: any string).
fn contains(expected: &Value, actual: &Value) -> bool {
    match (expected, actual) {
        (Value::String(star), Value::String(_)) if star == "*" => true,
        (Value::Object(want), Value::Object(have)) => want
            .iter()
            .all(|(key, value)| have.get(key).is_some_and(|h| contains(value, h))),
        (Value::Array(want), Value::Array(have)) => {
            want.len() <= have.len() && want.iter().zip(have).all(|(w, h)| contains(w, h))
        }
        (want, have) => want == have,
    }
}

// ---------------------------------------------------------------------------------------
// The platforms: their simulators place the valid orders
// ---------------------------------------------------------------------------------------

struct Platforms {
    sims: Sims,
    just_eat: just_eat::simulator::JustEatSim,
    http: reqwest::Client,
}

/// An order placed on a platform.
struct Placed {
    /// Whether the platform took the hub's answer as its acknowledgement.
    acked: bool,
    answer: Answer,
    external: Option<String>,
}

impl Platforms {
    async fn start() -> Platforms {
        let mut sims = Sims::start(SimPorts::ANY).await;
        assert!(sims.failed.is_empty(), "simulators: {:?}", sims.failed);
        // Redemptions come in bursts here: well under Dianping's rate limit.
        sims.dianping = Some(
            dianping::simulator::DianpingSim::start(dianping::simulator::SimConfig {
                rate_limit_per_second: 1000,
                ..Default::default()
            })
            .await
            .expect("the Dianping simulator"),
        );
        let just_eat = just_eat::simulator::JustEatSim::start(Default::default())
            .await
            .expect("the Just Eat simulator");
        Platforms {
            sims,
            just_eat,
            http: reqwest::Client::builder()
                .timeout(ANSWER_WITHIN)
                .build()
                .expect("client"),
        }
    }

    fn options(&self) -> Vec<(String, Value)> {
        let mut options = self.sims.hub_options();
        options.push((
            "just_eat".into(),
            json!({ "base_url": self.just_eat.base_url(), "timeout_secs": 5 }),
        ));
        options
    }

    fn connect(&self, hub: &Hub) {
        self.sims
            .connect(&hub.access.address.base, &hub.access.address.public);
        self.just_eat
            .set_hub_webhook_url(format!("{}/webhooks/just_eat", hub.base()));
    }

    async fn place(
        &self,
        hub: &Hub,
        channel: &'static str,
        store: &str,
        sample: &SampleOrder,
    ) -> Placed {
        if channel == "just_eat" {
            let placed = self.just_eat.place_order(sample).await;
            return Placed {
                acked: placed.answer.status == 202,
                answer: Answer::of(placed.answer.status, placed.answer.body),
                external: Some(placed.external_order_id),
            };
        }
        let token = hub.access.store_token(store).to_owned();
        let offered = crossdock_hub::demo::offer(
            &self.sims,
            channel,
            uber_eats::Generation::Classic,
            sample,
            &self.http,
            hub.base(),
            Some(&token),
        )
        .await
        .expect("the simulator places the order");
        Placed {
            acked: offered.acked,
            answer: Answer::of(offered.answer.status, offered.answer.body),
            external: offered.external_order_id,
        }
    }

    /// What the platform believes of the order, if it knows it.
    fn status(&self, channel: &str, external: &str) -> Option<Status> {
        let sims = &self.sims;
        match channel {
            "own_app" => sims.own_app.as_ref()?.order_status(external),
            "pos" => sims.pos.as_ref()?.status(external),
            "uber_eats" => sims.uber_eats.as_ref()?.order_status(external),
            "doordash" => sims.doordash.as_ref()?.status(external),
            "deliveroo" => sims.deliveroo.as_ref()?.unified_status(external),
            "meituan" => sims.meituan.as_ref()?.unified_status(external),
            "eleme" => sims.eleme.as_ref()?.order_status(external),
            "google" => sims.google.as_ref()?.status(external),
            "dianping" => sims.dianping.as_ref()?.status(external),
            "just_eat" => self.just_eat.status(external),
            _ => None,
        }
    }

    fn uber(&self) -> &uber_eats::simulator::UberEatsSim {
        self.sims
            .uber_eats
            .as_ref()
            .expect("the Uber Eats simulator")
    }

    fn dianping(&self) -> &dianping::simulator::DianpingSim {
        self.sims.dianping.as_ref().expect("the Dianping simulator")
    }
}

// ---------------------------------------------------------------------------------------
// Running the corpus
// ---------------------------------------------------------------------------------------

/// What the hub answered.
#[derive(Debug, Clone)]
struct Answer {
    status: u16,
    text: String,
    json: Value,
}

impl Answer {
    fn of(status: u16, text: String) -> Answer {
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer { status, text, json }
    }

    fn line(&self) -> String {
        let mut text = self.text.clone();
        if text.len() > 160 {
            let cut = (0..=160)
                .rev()
                .find(|i| text.is_char_boundary(*i))
                .unwrap_or(0);
            text.truncate(cut);
            text.push('…');
        }
        format!("{} {text}", self.status)
    }
}

async fn send(http: &reqwest::Client, base: &str, request: &Request) -> Answer {
    let url = match &request.query {
        Some(query) => format!("{base}{}?{query}", request.path),
        None => format!("{base}{}", request.path),
    };
    let mut builder = http
        .post(url)
        .timeout(ANSWER_WITHIN)
        .body(request.body.clone());
    for (name, value) in &request.headers {
        builder = builder.header(name, value);
    }
    match builder.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            Answer::of(status, response.text().await.unwrap_or_default())
        }
        Err(error) => Answer {
            status: 0,
            text: format!("no answer: {error}"),
            json: Value::Null,
        },
    }
}

/// What a case sent and got.
struct Outcome {
    answer: Answer,
    /// The case's fresh ids (a replay's are its valid request's).
    ids: Vec<String>,
    /// How many orders of those ids there were before it was sent.
    before: usize,
    /// Whether the platform's simulator took the answer as its acknowledgement, for cases
    /// it placed itself.
    acked: Option<bool>,
}

/// What a channel's run keeps between cases.
struct Run<'a> {
    spec: &'static Spec,
    hub: &'a Hub,
    platforms: &'a Platforms,
    /// The store of the sample (and of every case's order): (store, the channel's id of
    /// it, its currency).
    store: (String, String, String),
    /// Every store the channel sells at: the valid orders between the cases go to each in
    /// turn, so that no store fills up (stores take a limited number of orders at once).
    stores: Vec<(String, String, String)>,
    /// The valid sample: the request as the platform sent it and the document to change.
    request: Request,
    document: Vec<u8>,
    /// For notify-then-fetch, the notification's ids; for all, the document's.
    ids: Vec<String>,
    /// The last valid case: what was sent and its fresh ids.
    last_valid: Option<(Sent, Vec<u8>, Renames)>,
    /// Orders the corpus expects of this channel.
    orders: i64,
    /// Valid orders placed between the cases: their external ids and stores.
    placed: Vec<(String, String)>,
}

/// What was sent for a case.
#[derive(Clone)]
enum Sent {
    Webhook(Request),
    /// Uber: the notification, and the order id it names.
    Fetch(Request),
    /// Dianping: the code and the store's request.
    Counter(String),
}

async fn count(hub: &Hub, sql: &str, channel: &str) -> i64 {
    let client = hub.db().pool().get().await.expect("connection");
    client
        .query_one(sql, &[&channel])
        .await
        .expect("count")
        .get(0)
}

async fn last_quarantined(hub: &Hub, channel: &str) -> (i64, String, String) {
    hub.db()
        .quarantined(channel, 1)
        .await
        .expect("quarantine")
        .into_iter()
        .next()
        .unwrap_or((0, String::new(), String::new()))
}

/// Orders of the channel whose external id holds one of `ids`.
async fn orders_with(hub: &Hub, channel: &str, ids: &[String]) -> Vec<(String, String)> {
    let client = hub.db().pool().get().await.expect("connection");
    let mut found = Vec::new();
    for id in ids {
        let rows = client
            .query(
                "SELECT id::text, external_order_id FROM orders
                 WHERE channel = $1 AND strpos(external_order_id, $2) > 0",
                &[&channel, id],
            )
            .await
            .expect("orders");
        found.extend(rows.iter().map(|r| (r.get(0), r.get(1))));
    }
    found.sort();
    found.dedup();
    found
}

/// The corpus reports a case that never settles instead of stopping at it.
async fn eventually<T, F, Fut>(check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    crossdock_kit::harness::poll_until(WAIT, check).await
}

/// The channel's order once a store has it, as HQ sees it.
async fn routed(hub: &Hub, channel: &str, external: &str) -> Option<Value> {
    let order = eventually(|| async move {
        hub.db()
            .order_by_external(channel, external)
            .await
            .ok()
            .flatten()
            .filter(|o| o.store_id.is_some())
    })
    .await?;
    let (_, view) = hub
        .access
        .get(&hub.access.admin_token, &format!("/orders/{}", order.id))
        .await;
    Some(view)
}

impl<'a> Run<'a> {
    /// The base of the run: one valid order placed on the platform, as the hub kept it.
    async fn start(spec: &'static Spec, hub: &'a Hub, platforms: &'a Platforms) -> Run<'a> {
        let stores: Vec<(String, String, String)> = chain()
            .stores
            .into_iter()
            .filter_map(|store| {
                let reference = store.channels.get(spec.id)?.clone();
                Some((store.id.to_string(), reference, store.currency.to_string()))
            })
            .collect();
        let mut run = Run {
            spec,
            hub,
            platforms,
            store: stores
                .first()
                .expect("a store sells on the channel")
                .clone(),
            stores,
            request: Request {
                path: spec.path.to_owned(),
                query: None,
                headers: Vec::new(),
                body: Vec::new(),
            },
            document: Vec::new(),
            ids: Vec::new(),
            last_valid: None,
            orders: 0,
            placed: Vec::new(),
        };
        let external = run.place_valid().await;
        let client = hub.db().pool().get().await.expect("connection");
        let row = client
            .query_one(
                "SELECT headers, body FROM inbox WHERE channel = $1 ORDER BY received_at LIMIT 1",
                &[&spec.id],
            )
            .await
            .expect("the valid order's request is in the inbox");
        let headers: Value = row.get(0);
        let body: Vec<u8> = row.get(1);
        let kept = headers.as_object().cloned().unwrap_or_default();
        let dropped = [
            "host",
            "content-length",
            "connection",
            "accept",
            "accept-encoding",
            "transfer-encoding",
        ];
        run.request.headers = kept
            .iter()
            .filter(|(name, _)| !name.starts_with(':') && !dropped.contains(&name.as_str()))
            .filter_map(|(name, value)| Some((name.clone(), value.as_str()?.to_owned())))
            .collect();
        match spec.transport {
            Transport::Webhook => {
                run.document = if spec.codec == Codec::Form {
                    // Meituan's signature and its time come with each request.
                    let params: Vec<(String, String)> = meituan::sign::decode_form(&body)
                        .into_iter()
                        .filter(|(k, _)| k != meituan::sign::SIG && k != meituan::sign::TIMESTAMP)
                        .collect();
                    meituan::sign::encode_form(&params).into_bytes()
                } else {
                    body
                };
                run.ids = values_at(spec.codec, &run.document, spec.ids);
            }
            Transport::Fetch => {
                run.request.body = body;
                run.document = platforms
                    .uber()
                    .order_answer(&external)
                    .expect("Uber knows the order");
                run.ids = values_at(spec.codec, &run.document, spec.ids);
                run.ids
                    .extend(values_at(Codec::Json, &run.request.body, spec.ids));
            }
            Transport::Counter { .. } => {
                run.document = body;
                run.ids = values_at(spec.codec, &run.document, spec.ids);
            }
        }
        assert!(
            !run.ids.is_empty(),
            "{}: no ids at {:?} in {}",
            spec.id,
            spec.ids,
            String::from_utf8_lossy(&run.document)
        );
        run
    }

    /// The sample order at the sample's store.
    fn sample(&self) -> SampleOrder {
        let (_, reference, currency) = &self.store;
        sample_pickup(reference, currency)
    }

    /// Places a valid order on the platform, at the next store in turn; it must be
    /// acknowledged and stored.
    async fn place_valid(&mut self) -> String {
        let (store, reference, currency) =
            self.stores[self.placed.len() % self.stores.len()].clone();
        let placed = self
            .platforms
            .place(
                self.hub,
                self.spec.id,
                &store,
                &sample_pickup(&reference, &currency),
            )
            .await;
        assert!(
            placed.acked,
            "{}: a valid order was not acknowledged: {}",
            self.spec.id,
            placed.answer.line()
        );
        let external = placed.external.expect("the platform's order id");
        let db = self.hub.db();
        let channel = self.spec.id;
        let id = external.as_str();
        wait_for(
            &format!("{channel} valid order {id} stored"),
            WAIT,
            || async move { db.order_by_external(channel, id).await.ok().flatten() },
        )
        .await;
        self.orders += 1;
        self.placed.push((external.clone(), store));
        external
    }

    /// Sends a case; returns the answer and the fresh ids it carries.
    async fn send_case(&mut self, make: Make) -> Outcome {
        let spec = self.spec;
        let http = &self.platforms.http;
        let base = self.hub.base();
        let now = Utc::now();
        if let Make::Replay | Make::ReplayLate = make {
            let (sent, document, renames) =
                self.last_valid.clone().expect("a valid case came first");
            let ids = renames.new_ids();
            let before = orders_with(self.hub, spec.id, &ids).await.len();
            let answer = match (&sent, make) {
                (Sent::Webhook(request), Make::Replay) => send(http, base, request).await,
                (Sent::Webhook(request), _) => {
                    let mut late = request.clone();
                    late.body = document;
                    (spec.sign)(&mut late, now - TimeDelta::hours(2));
                    send(http, base, &late).await
                }
                (Sent::Fetch(request), _) => send(http, base, request).await,
                (Sent::Counter(code), _) => self.redeem(code, "1", None).await,
            };
            return Outcome {
                answer,
                ids,
                before,
                acked: None,
            };
        }
        let renames = Renames::fresh(&self.ids);
        let valid = renames.apply(&self.document);
        let limit = self.hub.infra.settings.http.body_limit_bytes;
        let document = mutate(spec, &valid, make, limit);
        let ids = renames.new_ids();
        let (sent, answer) = match spec.transport {
            Transport::Webhook => {
                let mut request = self.request.clone();
                request.body = document.clone();
                (spec.sign)(&mut request, now);
                if let Make::Forged = make {
                    forge(spec, &mut request);
                }
                let answer = send(http, base, &request).await;
                (Sent::Webhook(request), answer)
            }
            Transport::Fetch => {
                let uber = self.platforms.uber();
                // Uber knows the order (its write-backs work) but answers the document.
                uber.serve_order(&valid).expect("the valid order serves");
                let order_id = values_at(Codec::Json, &valid, &["id"])
                    .pop()
                    .expect("the order's id");
                uber.answer_raw(&order_id, document.clone());
                let mut request = self.request.clone();
                request.body = renames.apply(&self.request.body);
                (spec.sign)(&mut request, now);
                if let Make::Forged = make {
                    forge(spec, &mut request);
                }
                let answer = send(http, base, &request).await;
                (Sent::Fetch(request), answer)
            }
            Transport::Counter { code: code_at } => {
                let dianping = self.platforms.dianping();
                let sold = dianping.sell_sample(&self.sample());
                let code = sold.codes.first().expect("a voucher").clone();
                let old_code = values_at(spec.codec, &self.document, &[code_at])
                    .pop()
                    .expect("the answer's code");
                let document = replace_bytes(&document, old_code.as_bytes(), code.as_bytes());
                dianping.answer_consume_raw(&code, document);
                let count = match make {
                    Make::Set(Field::Quantity, raw) => raw,
                    _ => "1",
                };
                let token = matches!(make, Make::Forged).then_some("forged-store-token");
                let answer = self.redeem(&code, count, token).await;
                (Sent::Counter(code), answer)
            }
        };
        if let Make::Valid = make {
            self.last_valid = Some((sent, valid, renames));
        }
        Outcome {
            answer,
            ids,
            before: 0,
            acked: None,
        }
    }

    /// Redeems `code` as the store (or with `token`), `count` as JSON text.
    async fn redeem(&self, code: &str, count: &str, token: Option<&str>) -> Answer {
        let token = token.unwrap_or_else(|| self.hub.access.store_token(&self.store.0));
        let request = Request {
            path: self.spec.path.to_owned(),
            query: None,
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("authorization".into(), format!("Bearer {token}")),
            ],
            body: format!(r#"{{"channel":"dianping","code":"{code}","count":{count}}}"#)
                .into_bytes(),
        };
        send(&self.platforms.http, self.hub.base(), &request).await
    }

    /// Places the case's order on the platform's simulator (unknown store or item).
    async fn place_case(&mut self, make: Make) -> Outcome {
        let mut sample = self.sample();
        match make {
            Make::UnknownStore => sample.store_ref = Some(self.spec.unknown_store.to_owned()),
            _ => sample.items.push(SampleItem {
                plu: NOT_ON_MENU.into(),
                name: "Pizza of the day".into(),
                quantity: 1,
                unit_price_minor: 1299,
                notes: None,
                modifiers: vec![],
            }),
        }
        let placed = self
            .platforms
            .place(self.hub, self.spec.id, &self.store.0, &sample)
            .await;
        Outcome {
            answer: placed.answer,
            ids: placed.external.into_iter().collect(),
            before: 0,
            acked: Some(placed.acked),
        }
    }

    /// Runs one case; `Ok` with what it got (for the report), `Err` with what is wrong.
    async fn run_case(&mut self, case: &Case) -> Result<String, String> {
        let spec = self.spec;
        let expect = spec.expect(case);
        let quarantined = last_quarantined(self.hub, spec.id).await.0;
        let outcome = match case.make {
            Make::UnknownStore | Make::UnknownItem => self.place_case(case.make).await,
            make => self.send_case(make).await,
        };
        let answer = &outcome.answer;
        if answer.status == 0 || answer.status >= 500 {
            return Err(format!("expected {expect:?}, got {}", answer.line()));
        }
        let got = self.check(expect, &outcome, quarantined).await;
        got.map_err(|why| {
            format!(
                "expected {expect:?}: {why}; the hub answered {}",
                answer.line()
            )
        })
    }

    async fn check(
        &mut self,
        expect: Expect,
        outcome: &Outcome,
        quarantined: i64,
    ) -> Result<String, String> {
        let spec = self.spec;
        let hub = self.hub;
        let (answer, ids, before) = (&outcome.answer, &outcome.ids[..], outcome.before);
        let new_quarantine = || async move {
            let (id, kind, reason) = last_quarantined(hub, spec.id).await;
            (id > quarantined).then_some((kind, reason))
        };
        let acked = outcome
            .acked
            .unwrap_or_else(|| (spec.ack)(answer.status, &answer.json));
        match expect {
            Expect::Taken => {
                if !acked {
                    return Err("not acknowledged".into());
                }
                let channel = spec.id;
                let order = eventually(|| async move {
                    orders_with(hub, channel, ids).await.into_iter().next()
                })
                .await
                .ok_or("no order")?;
                let view = routed(hub, channel, &order.1)
                    .await
                    .ok_or("the order reached no store")?;
                if view["store_id"] != self.store.0.as_str() {
                    return Err(format!("routed to {}", view["store_id"]));
                }
                if let Some((kind, reason)) = new_quarantine().await {
                    return Err(format!("quarantined {kind}: {reason}"));
                }
                self.orders += 1;
                let lines = view["lines"].as_array().map_or(0, Vec::len);
                Ok(format!(
                    "{} → order of {lines} lines at {}",
                    answer.status, self.store.0
                ))
            }
            Expect::Replayed | Expect::Ignored => {
                if !acked {
                    return Err("not acknowledged".into());
                }
                let orders = orders_with(hub, spec.id, ids).await;
                if orders.len() != before {
                    return Err(format!("{} orders of its ids: {orders:?}", orders.len()));
                }
                if let Some((kind, reason)) = new_quarantine().await {
                    return Err(format!("quarantined {kind}: {reason}"));
                }
                Ok(match expect {
                    Expect::Ignored => format!("{} → nothing to act on", answer.status),
                    _ => format!("{} → no new order", answer.status),
                })
            }
            Expect::Refused(kind) | Expect::RefusedWith(kind, _) | Expect::RefusedPlain(kind) => {
                let (status, body) = match expect {
                    Expect::RefusedWith(_, code) => (spec.refusal)(kind, Some(code)),
                    Expect::RefusedPlain(_) => refusal_common(kind, None),
                    _ => (spec.refusal)(kind, None),
                };
                if answer.status != status || !contains(&body, &answer.json) {
                    return Err(format!("not {status} {body}"));
                }
                self.refused_and_quarantined(kind, ids, before, &new_quarantine().await)
                    .await?;
                Ok(format!("{} {kind}, quarantined", answer.status))
            }
            Expect::RefusedAfterFetch(kind) => {
                if !acked {
                    return Err("the notification was not acknowledged".into());
                }
                let quarantine = eventually(new_quarantine).await;
                self.refused_and_quarantined(kind, ids, before, &quarantine)
                    .await?;
                // The platform is told no at once (Uber: the order is denied).
                let platforms = self.platforms;
                let (channel, order_id) = (spec.id, ids.first().map_or("", String::as_str));
                let told = eventually(|| async move {
                    (platforms.status(channel, order_id) == Some(Status::Rejected)).then_some(())
                })
                .await;
                if told.is_none() {
                    return Err(format!(
                        "the platform was not told: it says {:?}",
                        platforms.status(channel, order_id)
                    ));
                }
                Ok(format!(
                    "{} → fetched: {kind}, quarantined, refused on the platform",
                    answer.status
                ))
            }
            Expect::Rejected(why) => {
                if !acked {
                    return Err("not acknowledged".into());
                }
                let external = ids.first().cloned().unwrap_or_default();
                let (channel, ext) = (spec.id, external.as_str());
                let order = eventually(|| async move {
                    hub.db()
                        .order_by_external(channel, ext)
                        .await
                        .ok()
                        .flatten()
                        .filter(|o| o.status == Status::Rejected)
                })
                .await
                .ok_or("not rejected")?;
                if order.store_id.is_some() {
                    return Err(format!("given to store {:?}", order.store_id));
                }
                let (_, view) = hub
                    .access
                    .get(&hub.access.admin_token, &format!("/orders/{}", order.id))
                    .await;
                let refusal = view["events"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|e| e["kind"] == "routed")
                    .map(|e| e["data"]["refusal"].clone());
                if refusal != Some(json!(why)) {
                    return Err(format!("routed as {refusal:?}"));
                }
                self.orders += 1;
                if !spec.told {
                    return Ok(format!("{} → rejected: {why}", answer.status));
                }
                let platforms = self.platforms;
                let told = eventually(|| async move {
                    (platforms.status(channel, ext) == Some(Status::Rejected)).then_some(())
                })
                .await;
                if told.is_none() {
                    let syncs = hub.db().syncs(order.id).await;
                    return Err(format!(
                        "the platform was not told: it says {:?}; the hub's pushes: {syncs:?}",
                        platforms.status(channel, ext)
                    ));
                }
                Ok(format!(
                    "{} → rejected: {why}, platform told",
                    answer.status
                ))
            }
            Expect::ApiRefused(status, code) => {
                if answer.status != status || answer.json["error"] != code {
                    return Err(format!("not {status} {code}"));
                }
                if let Some((kind, reason)) = new_quarantine().await {
                    return Err(format!("quarantined {kind}: {reason}"));
                }
                Ok(format!("{status} {code}"))
            }
        }
    }

    /// One quarantine record of `kind`, and no new order of the case's ids.
    async fn refused_and_quarantined(
        &self,
        kind: &str,
        ids: &[String],
        before: usize,
        quarantine: &Option<(String, String)>,
    ) -> Result<(), String> {
        match quarantine {
            Some((got, _)) if got == kind => {}
            Some((got, reason)) => return Err(format!("quarantined as {got}: {reason}")),
            None => return Err("not quarantined".into()),
        }
        let orders = orders_with(self.hub, self.spec.id, ids).await;
        if orders.len() != before {
            return Err(format!("orders made: {orders:?}"));
        }
        Ok(())
    }

    /// Every case, each followed by a valid order; then every valid order must have
    /// reached its store. Returns the report's rows and what is wrong.
    async fn corpus(mut self) -> (Vec<(String, String)>, Vec<String>) {
        let mut rows = Vec::new();
        let mut wrong = Vec::new();
        for case in CASES {
            match self.run_case(case).await {
                Ok(got) => rows.push((case.name.to_owned(), got)),
                Err(why) => {
                    rows.push((case.name.to_owned(), format!("WRONG: {why}")));
                    wrong.push(format!("{} {}: {why}", self.spec.id, case.name));
                }
            }
            self.place_valid().await;
        }
        for (external, store) in self.placed.clone() {
            match routed(self.hub, self.spec.id, &external).await {
                Some(view) if view["store_id"] == store.as_str() => {
                    self.hub
                        .delivered_to_store(view["id"].as_str().expect("order id"))
                        .await;
                }
                Some(view) => wrong.push(format!(
                    "{}: valid order {external} went to {}",
                    self.spec.id, view["store_id"]
                )),
                None => wrong.push(format!(
                    "{}: valid order {external} reached no store",
                    self.spec.id
                )),
            }
        }
        let orders = count(
            self.hub,
            "SELECT count(*) FROM orders WHERE channel = $1",
            self.spec.id,
        )
        .await;
        if orders != self.orders {
            wrong.push(format!(
                "{}: {orders} orders, the corpus expects {}",
                self.spec.id, self.orders
            ));
        }
        (rows, wrong)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_on_every_channel_gets_its_answer_and_valid_orders_keep_flowing() {
    let platforms = Platforms::start().await;
    let hub = Hub::start(platforms.options()).await;
    platforms.connect(&hub);
    let registered: Vec<&str> = crossdock_hub::channels::factories()
        .iter()
        .map(|f| f.id())
        .collect();
    let covered: Vec<&str> = CHANNELS.iter().map(|s| s.id).collect();
    let mut missing: Vec<&&str> = registered.iter().filter(|c| !covered.contains(c)).collect();
    missing.sort();
    assert!(missing.is_empty(), "channels without a corpus: {missing:?}");

    let runs = CHANNELS.iter().map(|spec| {
        let hub = &hub;
        let platforms = &platforms;
        async move { Run::start(spec, hub, platforms).await.corpus().await }
    });
    let results = futures::future::join_all(runs).await;

    let mut report = String::new();
    let mut wrong = Vec::new();
    for (spec, (rows, problems)) in CHANNELS.iter().zip(results) {
        for (case, got) in rows {
            let _ = writeln!(report, "{:<10} {case:<20} {got}", spec.id);
        }
        wrong.extend(problems);
    }
    println!("{report}");
    let ready = reqwest::get(format!("{}/readyz", hub.base()))
        .await
        .expect("/readyz answers");
    assert_eq!(ready.status(), 200, "the hub is still ready");
    assert!(wrong.is_empty(), "{}\n\n{report}", wrong.join("\n"));
    hub.stop().await;
}
