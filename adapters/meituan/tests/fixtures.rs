//! The fixture files under `fixtures/meituan/` are generated from the cases below with the
//! adapter's own signer ([`crossdock_adapter_meituan::sign`]), signed with the development
//! secret over the callback URL under `FIXTURE_PUBLIC_URL`, at `FIXTURE_TIME`. This test
//! fails when a file differs from what its case generates; `UPDATE_FIXTURES=1` rewrites
//! them (then `UPDATE_EXPECT=1 cargo test -p crossdock-adapter-meituan --test conformance`
//! rewrites the expected documents, to be read by hand before keeping them).
//!
//! The payloads follow Meituan's push format: every field a form field, `detail` and
//! `extras` JSON strings, yuan decimals, empty fields sent empty.

use std::path::PathBuf;

use crossdock_adapter_meituan::sign::{self, Params};
use crossdock_adapter_meituan::{DEV_APP_ID, DEV_APP_SECRET};
use crossdock_kit::{FIXTURE_PUBLIC_URL, FIXTURE_TIME};

/// `FIXTURE_TIME` as unix seconds (2026-11-20T12:00:00Z, 20:00 in Shanghai).
const NOW: i64 = 1_795_176_000;

struct Case {
    name: &'static str,
    push: &'static str,
    get: bool,
    double_encoded: bool,
    params: Params,
}

fn p(pairs: &[(&str, &str)]) -> Params {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// The fields every order push carries, for `order_id` at `store`.
fn order(
    order_id: &str,
    view_id: &str,
    store: (&str, &str, &str),
    extra: &[(&str, &str)],
) -> Params {
    let ctime = (NOW - 75).to_string();
    let mut params = p(&[
        ("order_id", order_id),
        ("wm_order_id_view", view_id),
        ("app_poi_code", store.0),
        ("wm_poi_name", store.1),
        ("wm_poi_address", store.2),
        ("wm_poi_phone", "021-60001234"),
        ("shipper_phone", ""),
        ("status", "2"),
        ("city_id", "310100"),
        ("has_invoiced", "0"),
        ("invoice_title", ""),
        ("taxpayer_id", ""),
        ("ctime", &ctime),
        ("utime", &ctime),
        ("is_third_shipping", "0"),
        ("pay_type", "2"),
        ("avg_send_time", "1800.0"),
    ]);
    for (key, value) in extra {
        params.retain(|(k, _)| k != key);
        params.push(((*key).to_owned(), (*value).to_owned()));
    }
    params
}

const JINGAN: (&str, &str, &str) = (
    "sh_jingan_001",
    "Crossdock 披萨 静安寺店",
    "上海市静安区南京西路1618号",
);
const LUJIAZUI: (&str, &str, &str) = (
    "sh_lujiazui_002",
    "Crossdock 披萨 陆家嘴店",
    "上海市浦东新区陆家嘴西路168号",
);
const XUJIAHUI: (&str, &str, &str) = (
    "sh_xujiahui_003",
    "Crossdock 披萨 徐家汇店",
    "上海市徐汇区虹桥路1号",
);
const RENMIN: (&str, &str, &str) = (
    "sh_renminguangchang_004",
    "Crossdock 披萨 人民广场店",
    "上海市黄浦区西藏中路268号",
);
const XINTIANDI: (&str, &str, &str) = (
    "sh_xintiandi_007",
    "Crossdock 披萨 新天地店",
    "上海市黄浦区马当路245号",
);

fn cases() -> Vec<Case> {
    let timestamp = (NOW - 60).to_string();
    vec![
        // A plain delivery by Meituan's fleet: 88 + 3 × 8 + 5 shipping = 117.
        Case {
            name: "order_delivery_jingan",
            push: "order",
            get: false,
            double_encoded: false,
            params: order(
                "27061900338318741",
                "33011287645913078",
                JINGAN,
                &[
                    (
                        "recipient_address",
                        "静安区愚园路68号 3号楼1202室@#上海市静安区愚园路68号",
                    ),
                    ("recipient_phone", "17012345678_4321"),
                    ("recipient_name", "王(先生)"),
                    ("shipping_fee", "5.0"),
                    ("total", "117.0"),
                    ("original_price", "117.0"),
                    ("caution", ""),
                    ("delivery_time", "0"),
                    ("pick_type", "0"),
                    ("latitude", "31.221512"),
                    ("longitude", "121.441203"),
                    ("day_seq", "12"),
                    ("logistics_code", "1001"),
                    (
                        "detail",
                        r#"[{"app_food_code":"PZ-MARG-L","food_name":"玛格丽特披萨（大）","sku_id":"PZ-MARG-L","quantity":1,"price":88.0,"box_num":0.0,"box_price":0.0,"unit":"份","food_discount":1.0,"spec":"12寸","food_property":"","cart_id":0},{"app_food_code":"DR-COLA-500","food_name":"可口可乐 500ml","sku_id":"DR-COLA-500","quantity":3,"price":8.0,"box_num":0.0,"box_price":0.0,"unit":"瓶","food_discount":1.0,"spec":"","food_property":"少冰","cart_id":0}]"#,
                    ),
                    ("extras", "[]"),
                ],
            ),
        },
        // A pickup (到店自取): half-and-half with its second-half toppings and a dip, all
        // flattened into spec and attributes (their prices inside `price`), and a note.
        // (98 + 12 stuffed crust + 3 pineapple + 4 ham + 3 dip) + 2 × 48 = 216.
        Case {
            name: "order_pickup_half_and_half",
            push: "order",
            get: false,
            double_encoded: false,
            params: order(
                "27061900338354102",
                "33011287645920455",
                XUJIAHUI,
                &[
                    ("recipient_address", "到店自取"),
                    ("recipient_phone", "138****5678"),
                    ("recipient_name", "陈(女士)"),
                    ("shipping_fee", "0.0"),
                    ("total", "216.0"),
                    ("original_price", "216.0"),
                    ("caution", "披萨切成8块，少放酱 到店自取"),
                    ("delivery_time", "0"),
                    ("pick_type", "1"),
                    ("latitude", "0"),
                    ("longitude", "0"),
                    ("day_seq", "7"),
                    (
                        "detail",
                        r#"[{"app_food_code":"PZ-PEPP-L","food_name":"意式辣香肠披萨（大）","sku_id":"PZ-PEPP-L","quantity":1,"price":120.0,"box_num":0.0,"box_price":0.0,"unit":"份","food_discount":1.0,"spec":"芝心饼底","food_property":"半份半份,半边菠萝,半边火腿,蒜香蘸酱","cart_id":0},{"app_food_code":"SD-WING-10","food_name":"烤鸡翅（10只）","sku_id":"SD-WING-10","quantity":2,"price":48.0,"box_num":0.0,"box_price":0.0,"unit":"份","food_discount":1.0,"spec":"蜂蜜烧烤酱","food_property":"","cart_id":0}]"#,
                    ),
                    ("extras", "[{}]"),
                ],
            ),
        },
        // Discounts (a 满减 split between Meituan and the merchant, a Meituan red packet, a
        // merchant delivery-fee reduction, an empty `{}`), shipping and box fees. Meituan
        // has no tips. 194 + 5.5 boxes + 6 shipping − 25 = 180.5.
        Case {
            name: "order_discounts_fees_lujiazui",
            push: "order",
            get: false,
            double_encoded: false,
            params: order(
                "27061900338377520",
                "33011287645933102",
                LUJIAZUI,
                &[
                    (
                        "recipient_address",
                        "浦东新区银城中路501号 上海中心大厦25楼@#上海市浦东新区银城中路501号",
                    ),
                    ("recipient_phone", "13501234567_8890"),
                    ("recipient_name", "Smith(先生)"),
                    ("shipping_fee", "6.0"),
                    ("total", "180.5"),
                    ("original_price", "205.5"),
                    ("caution", "发票抬头见备注"),
                    ("delivery_time", "0"),
                    ("pick_type", "0"),
                    ("latitude", "31.233671"),
                    ("longitude", "121.505693"),
                    ("day_seq", "31"),
                    ("logistics_code", "1001"),
                    (
                        "detail",
                        r#"[{"app_food_code":"PZ-BBQC-L","food_name":"BBQ烤鸡披萨（大）","sku_id":"PZ-BBQC-L","quantity":1,"price":108.0,"box_num":1.0,"box_price":2.0,"unit":"份","food_discount":1.0,"spec":"","food_property":"","cart_id":0},{"app_food_code":"SD-CHBR","food_name":"芝士面包","sku_id":"SD-CHBR","quantity":2,"price":32.0,"box_num":2.0,"box_price":1.0,"unit":"份","food_discount":1.0,"spec":"","food_property":"","cart_id":0},{"app_food_code":"DS-BROW","food_name":"巧克力布朗尼","sku_id":"DS-BROW","quantity":1,"price":22.0,"box_num":1.0,"box_price":1.5,"unit":"块","food_discount":1.0,"spec":"","food_property":"","cart_id":1}]"#,
                    ),
                    (
                        "extras",
                        r#"[{"act_detail_id":301522,"reduce_fee":20.0,"mt_charge":5.0,"poi_charge":15.0,"remark":"满150减20","type":2},{"act_detail_id":301588,"reduce_fee":3.0,"mt_charge":3.0,"poi_charge":0.0,"remark":"美团红包减3元","type":9},{"act_detail_id":301601,"reduce_fee":2.0,"mt_charge":0.0,"poi_charge":2.0,"remark":"减配送费2元","type":25},{}]"#,
                    ),
                ],
            ),
        },
        // A scheduled order (预订单) for lunch tomorrow, delivered by the store itself, from
        // an API version that sends micro-degree coordinates and string money in `detail`.
        // 98 + 2 × 10 + 4 = 122.
        Case {
            name: "order_scheduled_self_delivery",
            push: "order",
            get: false,
            double_encoded: false,
            params: order(
                "27061900338391377",
                "33011287645941820",
                RENMIN,
                &[
                    (
                        "recipient_address",
                        "黄浦区南京东路300号 恒基名人购物中心8楼",
                    ),
                    ("recipient_phone", "18612345678_0021"),
                    ("recipient_name", "赵(先生)"),
                    ("shipping_fee", "4.0"),
                    ("total", "122.0"),
                    ("original_price", "122.0"),
                    ("caution", "请12点前送到前台"),
                    ("delivery_time", &(NOW + 16 * 3600).to_string()),
                    ("pick_type", "0"),
                    ("latitude", "31236052"),
                    ("longitude", "121482377"),
                    ("logistics_code", "0000"),
                    (
                        "detail",
                        r#"[{"app_food_code":"PZ-HAWA-L","food_name":"夏威夷披萨（大）","sku_id":"PZ-HAWA-L","quantity":"1","price":"98.00","box_num":"0","box_price":"0","unit":"份","food_discount":"1","spec":"","food_property":"","cart_id":0},{"app_food_code":"DR-LEMO-500","food_name":"气泡柠檬水 500ml","sku_id":"DR-LEMO-500","quantity":"2","price":"10.00","box_num":"0","box_price":"0","unit":"瓶","food_discount":"1","spec":"","food_property":"去冰","cart_id":0}]"#,
                    ),
                    ("extras", "[]"),
                ],
            ),
        },
        // Unicode and emoji in the name, the note, the address and the items.
        // 92 + 2 × 25 + 3 = 145.
        Case {
            name: "order_unicode_emoji_xintiandi",
            push: "order",
            get: false,
            double_encoded: false,
            params: order(
                "27061900338402266",
                "33011287645950037",
                XINTIANDI,
                &[
                    (
                        "recipient_address",
                        "黄浦区马当路388号 🏢SOHO复兴广场A座18楼（前台）",
                    ),
                    ("recipient_phone", "15912345678_3030"),
                    ("recipient_name", "李🍕(女士)"),
                    ("shipping_fee", "3.0"),
                    ("total", "145.0"),
                    ("original_price", "145.0"),
                    ("caution", "不要香菜🌿，门口放下就好😊 Thank you!"),
                    ("delivery_time", "0"),
                    ("pick_type", "0"),
                    ("latitude", "31.215884"),
                    ("longitude", "121.474021"),
                    ("day_seq", "58"),
                    ("logistics_code", "1001"),
                    (
                        "detail",
                        r#"[{"app_food_code":"PZ-VEGG-L","food_name":"🥬田园蔬菜披萨（大）","sku_id":"PZ-VEGG-L","quantity":1,"price":92.0,"box_num":0.0,"box_price":0.0,"unit":"份","food_discount":1.0,"spec":"12寸","food_property":"无洋葱,多加罗勒🌿","cart_id":0},{"app_food_code":"DS-CINN-6","food_name":"肉桂小甜点（6个）✨","sku_id":"DS-CINN-6","quantity":2,"price":25.0,"box_num":0.0,"box_price":0.0,"unit":"份","food_discount":1.0,"spec":"","food_property":"","cart_id":0}]"#,
                    ),
                    ("extras", "[]"),
                ],
            ),
        },
        // The same kind of push with every value percent-encoded twice, as some arrive.
        // 28 + 5 = 33.
        Case {
            name: "order_double_encoded",
            push: "order",
            get: false,
            double_encoded: true,
            params: order(
                "27061900338415580",
                "33011287645962214",
                JINGAN,
                &[
                    ("recipient_address", "静安区常德路800号 1栋 (近武定路)"),
                    ("recipient_phone", "17700001234_5678"),
                    ("recipient_name", "周(先生)"),
                    ("shipping_fee", "5.0"),
                    ("total", "33.0"),
                    ("original_price", "33.0"),
                    ("caution", "多放番茄酱+辣椒酱 100%要热的"),
                    ("delivery_time", "0"),
                    ("pick_type", "0"),
                    ("latitude", "31.232107"),
                    ("longitude", "121.446517"),
                    ("day_seq", "13"),
                    ("logistics_code", "1001"),
                    (
                        "detail",
                        r#"[{"app_food_code":"SD-GARL-8","food_name":"蒜香面包结（8个）","sku_id":"SD-GARL-8","quantity":1,"price":28.0,"box_num":0.0,"box_price":0.0,"unit":"份","food_discount":1.0,"spec":"","food_property":"","cart_id":0}]"#,
                    ),
                    ("extras", "[]"),
                ],
            ),
        },
        // A price with a fraction of a fen: refused, never rounded.
        Case {
            name: "order_fraction_of_a_fen_refused",
            push: "order",
            get: false,
            double_encoded: false,
            params: order(
                "27061900338420019",
                "33011287645970080",
                JINGAN,
                &[
                    ("recipient_address", "静安区南京西路1038号"),
                    ("recipient_phone", "17012340000_1111"),
                    ("recipient_name", "孙(女士)"),
                    ("shipping_fee", "5.0"),
                    ("total", "17.345"),
                    ("original_price", "17.345"),
                    ("caution", ""),
                    ("delivery_time", "0"),
                    ("pick_type", "0"),
                    ("latitude", "31.229870"),
                    ("longitude", "121.458312"),
                    ("day_seq", "14"),
                    ("logistics_code", "1001"),
                    (
                        "detail",
                        r#"[{"app_food_code":"DR-COLA-500","food_name":"可口可乐 500ml","sku_id":"DR-COLA-500","quantity":1,"price":12.345,"box_num":0.0,"box_price":0.0,"unit":"瓶","food_discount":1.0,"spec":"","food_property":"","cart_id":0}]"#,
                    ),
                    ("extras", "[]"),
                ],
            ),
        },
        // The user cancels the first order: a GET with query parameters.
        Case {
            name: "cancel_by_user_get",
            push: "cancel",
            get: true,
            double_encoded: false,
            params: p(&[
                ("order_id", "27061900338318741"),
                ("reason_code", "1102"),
                ("reason", "用户取消订单：不想要了"),
                ("deal_op_type", "1"),
                ("timestamp", &timestamp),
            ]),
        },
        // Meituan agreed to refund an order in full: it is cancelled.
        Case {
            name: "refund_agreed",
            push: "refund",
            get: false,
            double_encoded: false,
            params: p(&[
                ("order_id", "27061900338377520"),
                ("notify_type", "agree"),
                ("reason", "商家同意退款：商品缺货"),
            ]),
        },
        // A refund request: noted, nothing changes yet.
        Case {
            name: "refund_applied_get",
            push: "refund",
            get: true,
            double_encoded: false,
            params: p(&[
                ("order_id", "27061900338402266"),
                ("notify_type", "apply"),
                ("reason", "送餐超时"),
            ]),
        },
        // Meituan's rider picked the order up.
        Case {
            name: "logistics_picked_up",
            push: "logistics",
            get: false,
            double_encoded: false,
            params: p(&[
                ("order_id", "27061900338318741"),
                ("wm_order_id_view", "33011287645913078"),
                ("logistics_status", "20"),
                ("time", &(NOW - 30).to_string()),
                ("dispatcher_name", "张师傅"),
                ("dispatcher_mobile", "13900001111_5566"),
            ]),
        },
    ]
}

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/meituan")
}

/// The files of a case: (suffix, contents).
fn files(case: &Case) -> Vec<(&'static str, Vec<u8>)> {
    let callback = format!("{FIXTURE_PUBLIC_URL}/webhooks/meituan/{}", case.push);
    let mut params = case.params.clone();
    let timestamp = params
        .iter()
        .find(|(k, _)| k == "timestamp")
        .map(|(_, v)| v.parse::<i64>().expect("timestamp"))
        .unwrap_or(NOW - 1);
    params.retain(|(k, _)| k != "timestamp");
    let signed = sign::signed(&callback, params, DEV_APP_ID, DEV_APP_SECRET, timestamp);
    let encoded = if case.double_encoded {
        sign::encode_form_twice(&signed)
    } else {
        sign::encode_form(&signed)
    };
    if case.get {
        vec![
            (".body", Vec::new()),
            (
                ".headers",
                b"# Meituan sends this push as a GET with query parameters.\nUser-Agent: Meituan-Open-Platform\n"
                    .to_vec(),
            ),
            (".method", b"GET\n".to_vec()),
            (".url", format!("{callback}?{encoded}\n").into_bytes()),
        ]
    } else {
        vec![
            (".body", encoded.into_bytes()),
            (
                ".headers",
                b"Content-Type: application/x-www-form-urlencoded;charset=UTF-8\nUser-Agent: Meituan-Open-Platform\n"
                    .to_vec(),
            ),
            (".url", format!("{callback}\n").into_bytes()),
        ]
    }
}

#[test]
fn fixture_files_are_what_their_cases_generate() {
    assert_eq!(
        chrono::DateTime::parse_from_rfc3339(FIXTURE_TIME)
            .expect("time")
            .timestamp(),
        NOW
    );
    let update = std::env::var_os("UPDATE_FIXTURES").is_some();
    let dir = dir();
    let mut stale = Vec::new();
    for case in cases() {
        for (suffix, contents) in files(&case) {
            let path = dir.join(format!("{}{suffix}", case.name));
            if update {
                std::fs::create_dir_all(&dir).expect("fixtures directory");
                std::fs::write(&path, &contents).expect("write fixture");
            } else if std::fs::read(&path).ok().as_deref() != Some(contents.as_slice()) {
                stale.push(path.display().to_string());
            }
        }
    }
    assert!(
        stale.is_empty(),
        "fixture files differ from their cases (UPDATE_FIXTURES=1 rewrites them): {stale:#?}"
    );
}

#[test]
fn every_store_in_the_fixtures_is_a_meituan_store_of_the_chain() {
    let chain: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir().join("../chain/chain.json")).expect("chain.json"),
    )
    .expect("chain JSON");
    let stores: Vec<String> = chain["stores"]
        .as_array()
        .expect("stores")
        .iter()
        .filter_map(|s| s["channels"]["meituan"].as_str().map(str::to_owned))
        .collect();
    let menu: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir().join("../chain/menu.json")).expect("menu.json"),
    )
    .expect("menu JSON");
    let plus: Vec<&str> = menu["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|i| i["plu"].as_str())
        .collect();
    for case in cases().iter().filter(|c| c.push == "order") {
        let get = |key: &str| {
            case.params
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        assert!(stores.contains(&get("app_poi_code")), "{}", case.name);
        let detail: Vec<serde_json::Value> =
            serde_json::from_str(&get("detail")).expect("detail JSON");
        for line in detail {
            let plu = line["app_food_code"].as_str().unwrap_or_default();
            assert!(
                plus.contains(&plu),
                "{}: {plu} is not on the menu",
                case.name
            );
        }
    }
}
