//! The fixture cases under `fixtures/eleme/`, written from Rust with the simulator's own
//! signer so they are reproducible: `UPDATE_FIXTURES=1 cargo test -p crossdock-adapter-eleme
//! fixture_files` rewrites the `.body` and `.headers` files (then
//! `UPDATE_EXPECT=1 cargo test -p crossdock-adapter-eleme --test conformance` rewrites the
//! `.expected.json` files; read every one before keeping it). Without `UPDATE_FIXTURES` the
//! test checks that the committed files are exactly what this module writes.
//!
//! The orders are at the sample chain's Shanghai stores (their `eleme` shop ids), with the
//! chain's PLUs as `extendCode` and its CNY prices, in the shape of Ele.me's real pushes
//! (yuan as Java doubles, Beijing local times, `null`s where Ele.me sends them). Every push
//! is sent at or just before `FIXTURE_TIME` (2026-11-20T12:00:00Z, 20:00 in Beijing).

use std::path::PathBuf;

use crate::simulator::{DEFAULT_APP_ID, DEFAULT_MERCHANT_USER_ID, signed_push};
use crate::wire::{
    EventMessage, IdText, NameValue, Num, OActivity, OGoodsGroup, OGoodsItem, OOrder, OrderRef,
};
use crate::{DEV_APP_SECRET, message_type};

pub(super) const DELIVERY_ORDER_ID: &str = "3038412207651894401";
pub(super) const PICKUP_ORDER_ID: &str = "3038412209904417282";
pub(super) const DISCOUNT_ORDER_ID: &str = "3038412203318825613";
pub(super) const SCHEDULED_ORDER_ID: &str = "3038412201276630484";
pub(super) const UNICODE_ORDER_ID: &str = "3038412208843391125";

/// SHA-001 静安寺店, SHA-004 人民广场店, SHA-002 陆家嘴店, SHA-007 新天地店, SHA-003 徐家汇店.
pub(super) const SHOP_JINGAN: &str = "501893201";
pub(super) const SHOP_PEOPLES_SQUARE: &str = "503008814";
pub(super) const SHOP_LUJIAZUI: &str = "502117658";
pub(super) const SHOP_XINTIANDI: &str = "504870345";
pub(super) const SHOP_XUJIAHUI: &str = "502340972";

/// One case: its name and the body Ele.me posts.
pub(super) struct FixtureCase {
    pub name: &'static str,
    pub body: Vec<u8>,
}

pub(super) const HEADERS: &str = "Content-Type: application/json; charset=utf-8\n";

fn num(text: &str) -> Option<Num> {
    Some(Num(text.to_owned()))
}

fn id(text: &str) -> Option<IdText> {
    Some(IdText(text.to_owned()))
}

fn order_ref(text: &str) -> Option<OrderRef> {
    Some(OrderRef(text.to_owned()))
}

fn pairs(values: &[(&str, &str)]) -> Option<Vec<NameValue>> {
    Some(
        values
            .iter()
            .map(|(name, value)| NameValue {
                name: Some((*name).to_owned()),
                value: Some((*value).to_owned()),
            })
            .collect(),
    )
}

/// An item as Ele.me sends it; `food` is the food id, `sku` its spec id.
#[allow(clippy::too_many_arguments)]
fn item(
    food: &str,
    sku: &str,
    name: &str,
    price: &str,
    quantity: i64,
    total: &str,
    plu: &str,
    specs: &[(&str, &str)],
    attributes: &[(&str, &str)],
) -> OGoodsItem {
    OGoodsItem {
        id: id(food),
        sku_id: id(sku),
        name: name.to_owned(),
        category_id: id("1"),
        price: num(price),
        quantity,
        total: num(total),
        additions: Some(Vec::new()),
        new_specs: pairs(specs),
        attributes: pairs(attributes),
        extend_code: Some(plu.to_owned()),
        bar_code: Some(String::new()),
        weight: num("1.0"),
        user_price: num(price),
        shop_price: num(price),
        vfood_id: id(food),
    }
}

/// The box-fee line of the `extra` group (Ele.me's id −70000, category 102).
fn box_fee(quantity: i64, total: &str) -> OGoodsItem {
    OGoodsItem {
        id: id("-70000"),
        sku_id: id("-1"),
        name: "餐盒".to_owned(),
        category_id: id("102"),
        price: num("1.0"),
        quantity,
        total: num(total),
        additions: Some(Vec::new()),
        new_specs: Some(Vec::new()),
        attributes: Some(Vec::new()),
        extend_code: Some(String::new()),
        bar_code: Some(String::new()),
        weight: None,
        user_price: num("0.0"),
        shop_price: num("0.0"),
        vfood_id: id("-70000"),
    }
}

fn basket(items: Vec<OGoodsItem>) -> OGoodsGroup {
    OGoodsGroup {
        name: Some("1号篮子".to_owned()),
        kind: "normal".to_owned(),
        items: Some(items),
    }
}

fn extras(items: Vec<OGoodsItem>) -> OGoodsGroup {
    OGoodsGroup {
        name: Some("其它费用".to_owned()),
        kind: "extra".to_owned(),
        items: Some(items),
    }
}

/// An order with the fields every case shares; each case sets the rest.
fn base(order_id: &str, shop: &str, shop_name: &str, created_at: &str) -> OOrder {
    OOrder {
        id: order_ref(order_id),
        order_id: order_ref(order_id),
        created_at: Some(created_at.to_owned()),
        active_at: Some(created_at.to_owned()),
        deliver_time: None,
        description: Some(String::new()),
        invoice: None,
        book: Some(false),
        online_paid: Some(true),
        shop_id: id(shop),
        shop_name: Some(shop_name.to_owned()),
        status: Some("unprocessed".to_owned()),
        refund_status: Some("noRefund".to_owned()),
        invoiced: Some(false),
        service_rate: num("0.15"),
        hongbao: num("0.0"),
        package_fee: num("0.0"),
        activity_total: num("0.0"),
        shop_part: num("0.0"),
        eleme_part: num("0.0"),
        downgraded: Some(false),
        vip_delivery_fee_discount: num("0.0"),
        secret_phone_expire_time: None,
        order_activities: Some(Vec::new()),
        invoice_type: None,
        taxpayer_id: Some(String::new()),
        cold_box_fee: num("0.0"),
        order_business_type: Some(0),
        ..OOrder::default()
    }
}

fn delivery_order() -> OOrder {
    OOrder {
        address: Some("上海市静安区南京西路1788号 国际中心 12楼1203室".to_owned()),
        deliver_fee: num("6.0"),
        groups: Some(vec![basket(vec![
            item(
                "1298577560",
                "200000100943422213",
                "玛格丽特披萨(大)",
                "88.0",
                1,
                "88.0",
                "PZ-MARG-L",
                &[("规格", "大份 12寸")],
                &[("饼底", "经典手抛")],
            ),
            item(
                "1288279667",
                "200000090398379781",
                "可乐(500ml)",
                "8.0",
                2,
                "16.0",
                "DR-COLA-500",
                &[],
                &[("冰量", "少冰")],
            ),
        ])]),
        phone_list: Some(vec!["13812345678".to_owned()]),
        open_id: Some("SHA-001".to_owned()),
        day_sn: Some(12),
        user_id: id("201506988"),
        total_price: num("110.0"),
        original_price: num("110.0"),
        consignee: Some("李(先生)".to_owned()),
        delivery_geo: Some("121.45281532,31.22185904".to_owned()),
        delivery_poi_address: Some("国际中心".to_owned()),
        income: num("93.5"),
        service_fee: num("-16.5"),
        ..base(
            DELIVERY_ORDER_ID,
            SHOP_JINGAN,
            "Crossdock 披萨 静安寺店",
            "2026-11-20T19:58:03",
        )
    }
}

fn pickup_order() -> OOrder {
    OOrder {
        address: Some(String::new()),
        deliver_fee: num("0.0"),
        description: Some("请切成8块，到店后电话联系，谢谢".to_owned()),
        groups: Some(vec![
            basket(vec![
                item(
                    "1301455780",
                    "200000100955120133",
                    "意式辣香肠披萨(大)",
                    "121.0",
                    1,
                    "121.0",
                    "PZ-PEPP-L",
                    &[("规格", "大份 12寸")],
                    &[
                        ("饼底", "芝心饼底"),
                        ("加料", "额外马苏里拉"),
                        ("半半拼", "半份 / 菠萝"),
                    ],
                ),
                item(
                    "1301455921",
                    "200000100955120471",
                    "蒜香面包结(8个)",
                    "31.0",
                    2,
                    "62.0",
                    "SD-GARL-8",
                    &[],
                    &[("蘸酱", "蒜香香草酱")],
                ),
            ]),
            extras(vec![box_fee(2, "2.0")]),
        ]),
        phone_list: Some(vec!["13912345678".to_owned()]),
        open_id: Some("SHA-004".to_owned()),
        day_sn: Some(3),
        user_id: id("188201443"),
        total_price: num("185.0"),
        original_price: num("185.0"),
        consignee: Some("张(女士)".to_owned()),
        delivery_geo: Some(String::new()),
        delivery_poi_address: Some(String::new()),
        income: num("157.25"),
        service_fee: num("-27.75"),
        package_fee: num("2.0"),
        order_business_type: Some(1),
        ..base(
            PICKUP_ORDER_ID,
            SHOP_PEOPLES_SQUARE,
            "Crossdock 披萨 人民广场店",
            "2026-11-20T19:41:27",
        )
    }
}

fn discount_order() -> OOrder {
    OOrder {
        address: Some("上海市浦东新区陆家嘴环路1000号 恒生银行大厦 32楼".to_owned()),
        deliver_fee: num("5.0"),
        groups: Some(vec![
            basket(vec![
                item(
                    "1301460112",
                    "200000100955133871",
                    "BBQ烤鸡披萨(大)",
                    "108.0",
                    1,
                    "108.0",
                    "PZ-BBQC-L",
                    &[("规格", "大份 12寸")],
                    &[("饼底", "薄底")],
                ),
                item(
                    "1301460340",
                    "200000100955134102",
                    "烤鸡翅(10个)",
                    "48.0",
                    1,
                    "48.0",
                    "SD-WING-10",
                    &[],
                    &[("酱料", "蜂蜜BBQ")],
                ),
                item(
                    "1301460377",
                    "200000100955134215",
                    "凯撒沙拉",
                    "38.0",
                    1,
                    "38.0",
                    "SD-CAES-S",
                    &[],
                    &[("沙拉酱", "凯撒酱")],
                ),
            ]),
            OGoodsGroup {
                name: Some("赠品".to_owned()),
                kind: "discount".to_owned(),
                items: Some(vec![item(
                    "1301460419",
                    "200000100955134390",
                    "巧克力布朗尼",
                    "22.0",
                    1,
                    "22.0",
                    "DS-BROW",
                    &[],
                    &[],
                )]),
            },
            extras(vec![box_fee(3, "3.0")]),
        ]),
        phone_list: Some(vec!["17012345678,3456".to_owned()]),
        open_id: Some("SHA-002".to_owned()),
        day_sn: Some(27),
        user_id: id("176633019"),
        total_price: num("167.0"),
        original_price: num("202.0"),
        consignee: Some("Wang(先生)".to_owned()),
        delivery_geo: Some("121.50492174,31.23816352".to_owned()),
        delivery_poi_address: Some("恒生银行大厦".to_owned()),
        income: num("137.9"),
        service_fee: num("-24.1"),
        hongbao: num("-5.0"),
        package_fee: num("3.0"),
        activity_total: num("-30.0"),
        shop_part: num("-20.0"),
        eleme_part: num("-10.0"),
        order_activities: Some(vec![OActivity {
            id: id("141587914"),
            name: Some("满150减30".to_owned()),
            category_id: Some(12),
            eleme_part: num("-10.0"),
            restaurant_part: num("-20.0"),
            amount: num("-30.0"),
        }]),
        ..base(
            DISCOUNT_ORDER_ID,
            SHOP_LUJIAZUI,
            "Crossdock 披萨 陆家嘴店",
            "2026-11-20T19:52:40",
        )
    }
}

fn scheduled_order() -> OOrder {
    OOrder {
        address: Some("上海市黄浦区马当路388号 SOHO复兴广场 A座 8楼 前台".to_owned()),
        deliver_fee: num("0.0"),
        deliver_time: Some("2026-11-21T12:30:00".to_owned()),
        book: Some(true),
        description: Some("预订单，请12点半送到前台".to_owned()),
        groups: Some(vec![basket(vec![
            item(
                "1301470055",
                "200000100955150218",
                "夏威夷披萨(大)",
                "98.0",
                1,
                "98.0",
                "PZ-HAWA-L",
                &[("规格", "大份 12寸")],
                &[("饼底", "经典手抛")],
            ),
            item(
                "1301470102",
                "200000100955150330",
                "气泡柠檬水(500ml)",
                "10.0",
                2,
                "20.0",
                "DR-LEMO-500",
                &[],
                &[("冰量", "去冰")],
            ),
        ])]),
        phone_list: Some(vec!["13698765432".to_owned()]),
        open_id: Some("SHA-007".to_owned()),
        day_sn: Some(8),
        user_id: id("150019277"),
        total_price: num("118.0"),
        original_price: num("118.0"),
        consignee: Some("陈(先生)".to_owned()),
        delivery_geo: Some("121.47234001,31.21577230".to_owned()),
        delivery_poi_address: Some("SOHO复兴广场".to_owned()),
        income: num("100.3"),
        service_fee: num("-17.7"),
        ..base(
            SCHEDULED_ORDER_ID,
            SHOP_XINTIANDI,
            "Crossdock 披萨 新天地店",
            "2026-11-20T19:40:12",
        )
    }
}

fn unicode_order() -> OOrder {
    OOrder {
        address: Some("上海市徐汇区虹桥路1号 港汇恒隆广场 B1层 🍜美食街 “北门”".to_owned()),
        deliver_fee: num("4.0"),
        description: Some("不要香菜🌿！门口有狗🐶，请敲门 🚪 \"别按门铃\"".to_owned()),
        groups: Some(vec![basket(vec![
            item(
                "1301480871",
                "200000100955162044",
                "🍕 玛格丽特披萨(中)",
                "68.0",
                1,
                "68.0",
                "PZ-MARG-M",
                &[("规格", "中份 9寸")],
                &[("口味", "微辣🌶️")],
            ),
            item(
                "1301480929",
                "200000100955162187",
                "肉桂卷🥐(6个)",
                "25.0",
                1,
                "25.0",
                "DS-CINN-6",
                &[],
                &[("蘸酱", "「蒜香」酱 \"特调\"")],
            ),
        ])]),
        phone_list: Some(vec!["15000001111".to_owned()]),
        open_id: Some("SHA-003".to_owned()),
        day_sn: Some(41),
        user_id: id("190044711"),
        total_price: num("97.0"),
        original_price: num("97.0"),
        consignee: Some("欧阳娜娜(女士) 🌸".to_owned()),
        delivery_geo: Some("121.44213577,31.19761803".to_owned()),
        delivery_poi_address: Some("港汇恒隆广场".to_owned()),
        income: num("82.45"),
        service_fee: num("-14.55"),
        ..base(
            UNICODE_ORDER_ID,
            SHOP_XUJIAHUI,
            "Crossdock 披萨 徐家汇店",
            "2026-11-20T19:55:51",
        )
    }
}

fn order_push(request_id: &str, timestamp_ms: i64, order: &OOrder) -> Vec<u8> {
    let shop = order
        .shop_id
        .as_ref()
        .map(|s| s.as_str().to_owned())
        .unwrap_or_default();
    let message = serde_json::to_string(order).expect("an order serializes");
    push(
        message_type::ORDER_EFFECTIVE,
        request_id,
        timestamp_ms,
        &shop,
        &message,
    )
}

fn event_push(kind: i64, request_id: &str, timestamp_ms: i64, message: &EventMessage) -> Vec<u8> {
    let shop = message
        .shop_id
        .as_ref()
        .map(|s| s.as_str().to_owned())
        .unwrap_or_default();
    let text = serde_json::to_string(message).expect("a message serializes");
    push(kind, request_id, timestamp_ms, &shop, &text)
}

fn push(kind: i64, request_id: &str, timestamp_ms: i64, shop: &str, message: &str) -> Vec<u8> {
    signed_push(
        kind,
        message,
        shop,
        request_id,
        timestamp_ms,
        DEFAULT_APP_ID,
        DEFAULT_MERCHANT_USER_ID,
        DEV_APP_SECRET,
    )
}

fn status(order_id: &str, shop: &str, state: &str, role: i64, update_time: i64) -> EventMessage {
    EventMessage {
        order_id: order_ref(order_id),
        shop_id: id(shop),
        state: Some(state.to_owned()),
        role: Some(role),
        update_time: Some(update_time),
        ..EventMessage::default()
    }
}

fn courier(order_id: &str, shop: &str, state: &str, update_at: i64) -> EventMessage {
    EventMessage {
        order_id: order_ref(order_id),
        shop_id: id(shop),
        state: Some(state.to_owned()),
        sub_state: Some("noSubstate".to_owned()),
        name: Some("王师傅".to_owned()),
        phone: Some("13700001234".to_owned()),
        update_at: Some(update_at),
        ..EventMessage::default()
    }
}

/// Every case, in the order they are listed in the crate's docs.
pub(super) fn cases() -> Vec<FixtureCase> {
    vec![
        FixtureCase {
            name: "order-delivery",
            body: order_push("200007261120195801", 1_795_175_885_312, &delivery_order()),
        },
        FixtureCase {
            name: "order-pickup-specs-note",
            body: order_push("200007261120194102", 1_795_174_889_071, &pickup_order()),
        },
        FixtureCase {
            name: "order-discounts-gift-fees",
            body: order_push("200007261120195203", 1_795_175_562_640, &discount_order()),
        },
        FixtureCase {
            name: "order-scheduled",
            body: order_push("200007261120194004", 1_795_174_814_205, &scheduled_order()),
        },
        FixtureCase {
            name: "order-unicode-emoji",
            body: order_push("200007261120195505", 1_795_175_753_998, &unicode_order()),
        },
        FixtureCase {
            name: "cancel-14-before-acceptance",
            body: event_push(
                message_type::CANCELLED_BEFORE_ACCEPTANCE,
                "100007375120195906",
                1_795_175_961_227,
                &status(DELIVERY_ORDER_ID, SHOP_JINGAN, "invalid", 1, 1_795_175_961),
            ),
        },
        FixtureCase {
            name: "cancel-23-request-agreed",
            body: event_push(
                message_type::CANCEL_AGREED,
                "100007375120195907",
                1_795_175_990_514,
                &EventMessage {
                    order_id: order_ref(DISCOUNT_ORDER_ID),
                    shop_id: id(SHOP_LUJIAZUI),
                    refund_status: Some("successful".to_owned()),
                    reason: Some("地址填错了".to_owned()),
                    update_time: Some(1_795_175_990),
                    ..EventMessage::default()
                },
            ),
        },
        FixtureCase {
            name: "status-12-merchant-accepted",
            body: event_push(
                message_type::MERCHANT_ACCEPTED,
                "100007375120195808",
                1_795_175_921_733,
                &status(UNICODE_ORDER_ID, SHOP_XUJIAHUI, "valid", 3, 1_795_175_921),
            ),
        },
        FixtureCase {
            name: "delivery-55-picked-up",
            body: event_push(
                message_type::DELIVERY_DELIVERING,
                "100007375120195909",
                1_795_175_995_102,
                &courier(
                    UNICODE_ORDER_ID,
                    SHOP_XUJIAHUI,
                    "delivering",
                    1_795_175_995_000,
                ),
            ),
        },
        FixtureCase {
            name: "delivery-56-delivered",
            body: event_push(
                message_type::DELIVERY_COMPLETED,
                "100007375120195910",
                1_795_175_999_871,
                &courier(
                    UNICODE_ORDER_ID,
                    SHOP_XUJIAHUI,
                    "completed",
                    1_795_175_999_000,
                ),
            ),
        },
    ]
}

pub(super) fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/eleme")
}

/// A case's committed body.
pub(super) fn body(name: &str) -> Vec<u8> {
    let path = dir().join(format!("{name}.body"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

#[test]
fn fixture_files_are_what_the_generator_writes() {
    let update = std::env::var_os("UPDATE_FIXTURES").is_some();
    let dir = dir();
    for case in cases() {
        let body_path = dir.join(format!("{}.body", case.name));
        let headers_path = dir.join(format!("{}.headers", case.name));
        if update {
            std::fs::create_dir_all(&dir).expect("fixtures directory");
            std::fs::write(&body_path, &case.body).expect("write body");
            std::fs::write(&headers_path, HEADERS).expect("write headers");
            continue;
        }
        let committed = std::fs::read(&body_path).unwrap_or_else(|e| {
            panic!("{}: {e} (UPDATE_FIXTURES=1 writes it)", body_path.display())
        });
        assert!(
            committed == case.body,
            "{} differs from what the generator writes (UPDATE_FIXTURES=1 rewrites it)",
            body_path.display()
        );
        let headers = std::fs::read_to_string(&headers_path).expect("headers file");
        assert_eq!(headers, HEADERS, "{}", headers_path.display());
    }
}
