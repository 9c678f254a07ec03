//! Meituan's wire shapes. A push is flat form fields (read from [`crate::sign::Params`]);
//! two of them, `detail` and `extras`, are JSON arrays in a string, mirrored here. Every
//! field is kept as its raw JSON text ([`RawValue`]) because Meituan sends the same field as
//! a number in one version and as a string in another, and because money must be read from
//! its exact decimal text, never through `f64`.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// One line of `detail` (菜品详情).
#[derive(Debug, Deserialize)]
pub(crate) struct DetailItem<'a> {
    /// APP方菜品id: the chain's item code (PLU).
    #[serde(borrow, default)]
    pub app_food_code: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub food_name: Option<&'a RawValue>,
    /// The merchant's spec (SKU) code.
    #[serde(borrow, default)]
    pub sku_id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub quantity: Option<&'a RawValue>,
    /// Unit price in yuan (after item discounts, spec price included).
    #[serde(borrow, default)]
    pub price: Option<&'a RawValue>,
    /// Boxes for the whole line (already × quantity).
    #[serde(borrow, default)]
    pub box_num: Option<&'a RawValue>,
    /// Price of one box, yuan.
    #[serde(borrow, default)]
    pub box_price: Option<&'a RawValue>,
    /// 规格: one spec name.
    #[serde(borrow, default)]
    pub spec: Option<&'a RawValue>,
    /// 属性: comma-separated attributes (`少冰,半糖`).
    #[serde(borrow, default)]
    pub food_property: Option<&'a RawValue>,
}

/// One entry of `extras` (优惠信息). May be `{}`.
#[derive(Debug, Deserialize)]
pub(crate) struct ExtraItem<'a> {
    /// What the activity takes off the order, yuan (Meituan's and the merchant's parts).
    #[serde(borrow, default)]
    pub reduce_fee: Option<&'a RawValue>,
    /// Meituan's part, yuan (subscription field 20).
    #[serde(borrow, default)]
    pub mt_charge: Option<&'a RawValue>,
    /// The merchant's part, yuan (subscription field 20).
    #[serde(borrow, default)]
    pub poi_charge: Option<&'a RawValue>,
    /// `满40减8`.
    #[serde(borrow, default)]
    pub remark: Option<&'a RawValue>,
    /// The activity type (1 首单减, 2 满减, 9 使用优惠劵, …).
    #[serde(borrow, default, rename = "type")]
    pub kind: Option<&'a RawValue>,
}

/// A scalar JSON value as text: a string's content, a number's or boolean's literal;
/// `None` for an absent field or `null`. Errors name what the value is instead.
pub(crate) fn scalar(raw: Option<&RawValue>) -> Result<Option<String>, String> {
    let Some(raw) = raw else { return Ok(None) };
    let text = raw.get().trim();
    match text.as_bytes().first() {
        None | Some(b'n') if text == "null" || text.is_empty() => Ok(None),
        Some(b'"') => serde_json::from_str::<String>(text)
            .map(Some)
            .map_err(|e| format!("unreadable string: {e}")),
        Some(b'-' | b'0'..=b'9') => Ok(Some(text.to_owned())),
        Some(b't' | b'f') if text == "true" || text == "false" => Ok(Some(text.to_owned())),
        _ => Err(format!(
            "expected a string or a number, found `{}`",
            crossdock_channel::clip(text)
        )),
    }
}

/// What every Meituan API call answers: `{"data":"ok"}`, `{"data":{…}}` or
/// `{"data":"ng","error":{"code":…,"msg":…}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiAnswer {
    #[serde(default)]
    pub data: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ApiError>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiError {
    /// A number on the wire; some gateways send it as a string.
    #[serde(default)]
    pub code: serde_json::Value,
    #[serde(default)]
    pub msg: String,
}

impl ApiError {
    pub fn code_number(&self) -> Option<i64> {
        match &self.code {
            serde_json::Value::Number(n) => n.as_i64(),
            serde_json::Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }
}

impl ApiAnswer {
    pub fn ok() -> Self {
        Self {
            data: serde_json::Value::String("ok".to_owned()),
            error: None,
        }
    }

    pub fn ng(code: u16, msg: impl Into<String>) -> Self {
        Self {
            data: serde_json::Value::String("ng".to_owned()),
            error: Some(ApiError {
                code: serde_json::Value::from(code),
                msg: msg.into(),
            }),
        }
    }

    /// `data` is `"ng"` or an error is present.
    pub fn is_error(&self) -> bool {
        self.data.as_str() == Some("ng") || self.error.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_keep_their_exact_text() {
        let read = |json: &str| {
            let raw: Box<RawValue> = serde_json::from_str(json).expect("json");
            scalar(Some(&raw))
        };
        assert_eq!(read("12.50"), Ok(Some("12.50".into())));
        assert_eq!(read("0.1"), Ok(Some("0.1".into())));
        assert_eq!(read("\"8.8\""), Ok(Some("8.8".into())));
        assert_eq!(read("\"少冰,半糖\""), Ok(Some("少冰,半糖".into())));
        assert_eq!(read("null"), Ok(None));
        assert_eq!(read("true"), Ok(Some("true".into())));
        assert!(read("[1]").is_err());
        assert!(read("{}").is_err());
        assert_eq!(scalar(None), Ok(None));
    }

    #[test]
    fn answers_read_ok_and_ng() {
        let ok: ApiAnswer = serde_json::from_str(r#"{"data":"ok"}"#).expect("ok");
        assert!(!ok.is_error());
        let ng: ApiAnswer =
            serde_json::from_str(r#"{"data":"ng","error":{"code":703,"msg":"签名验证错误"}}"#)
                .expect("ng");
        assert!(ng.is_error());
        assert_eq!(ng.error.as_ref().and_then(ApiError::code_number), Some(703));
        let text: ApiAnswer =
            serde_json::from_str(r#"{"data":"ng","error":{"code":"808","msg":"x"}}"#).expect("ng");
        assert_eq!(text.error.and_then(|e| e.code_number()), Some(808));
        assert_eq!(
            serde_json::to_string(&ApiAnswer::ng(701, "缺少参数")).expect("json"),
            r#"{"data":"ng","error":{"code":701,"msg":"缺少参数"}}"#
        );
        assert_eq!(
            serde_json::to_string(&ApiAnswer::ok()).expect("json"),
            r#"{"data":"ok"}"#
        );
    }
}
