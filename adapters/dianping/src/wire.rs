//! Serde types mirroring Dianping's JSON answers (they never leave the crate), and the
//! reader that keeps every JSON number as its exact text.
//!
//! Dianping sends money as JSON numbers in yuan (`"deal_price": 88.8`) and ids as JSON
//! numbers (`"deal_id": 993507556`). `serde_json` would read both through `f64`, so the
//! adapter first rewrites every number literal of the answer into a JSON string holding
//! the same characters ([`numbers_as_text`]); the types below then read them as strings.
//! The answer's own bytes are kept untouched for audit.

use serde::{Deserialize, Serialize};

/// Every Dianping answer: `code` 200 is success, anything else carries `msg`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Envelope<T> {
    /// The result code, as text (`"200"`).
    pub code: String,
    #[serde(default)]
    pub msg: Option<String>,
    #[serde(default = "none")]
    pub data: Option<T>,
}

fn none<T>() -> Option<T> {
    None
}

/// One voucher (券) in the answers of `prepare`, `consume`, `reverseconsume` and
/// `getconsumed` (`ReceiptValidateResultDTO` in the public client libraries). All numbers
/// are text here (see the module docs).
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct Receipt {
    /// The voucher code (券码).
    #[serde(default)]
    pub receipt_code: Option<String>,
    /// 套餐 id: the deal; also `app_deal_id` of `reverseconsume`.
    #[serde(default)]
    pub deal_id: Option<String>,
    /// 团购 id: one group-buy has one or more deals.
    #[serde(default)]
    pub dealgroup_id: Option<String>,
    /// Non-group-buy products (`product_type` 1) carry this instead of a deal id.
    #[serde(default)]
    pub product_item_id: Option<String>,
    #[serde(default)]
    pub deal_title: Option<String>,
    /// What the customer paid for one voucher, in yuan.
    #[serde(default)]
    pub deal_price: Option<String>,
    /// The deal's list ("market") price, in yuan.
    #[serde(default)]
    pub deal_marketprice: Option<String>,
    /// 0 ordinary group-buy, 205 multi-use card (次卡).
    #[serde(default)]
    pub biz_type: Option<String>,
    /// The customer's mobile, masked by Dianping (`176****5045`).
    #[serde(default)]
    pub mobile: Option<String>,
    /// `prepare` only: how many vouchers of this deal the customer can still use.
    #[serde(default)]
    pub count: Option<String>,
    /// `consume` only: Dianping's order the voucher was bought in.
    #[serde(default)]
    pub order_id: Option<String>,
    #[serde(default)]
    pub open_shop_uuid: Option<String>,
    /// Expiry: milliseconds since the epoch (`receiptEndDate`, as seen in answers) or
    /// `yyyy-MM-dd HH:mm:ss` (`receipt_end_date`, as the Go client declares it).
    #[serde(default, rename = "receiptEndDate", alias = "receipt_end_date")]
    pub receipt_end_date: Option<String>,
    #[serde(default)]
    pub payment_detail: Option<Vec<PaymentDetail>>,
}

/// One part of what the customer paid (`amount_type` 10 is the customer's payment as
/// seen in answers; the other types are not documented publicly).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub(crate) struct PaymentDetail {
    #[serde(default)]
    pub payment_detail_id: Option<String>,
    #[serde(default)]
    pub amount: Option<String>,
    #[serde(default)]
    pub amount_type: Option<String>,
}

/// Rewrites a JSON document so that every number literal becomes a JSON string with the
/// same characters (`{"p":88.80}` → `{"p":"88.80"}`). Strings (with their escapes) are
/// copied as they are. The input need not be valid JSON: whatever it is, the JSON parser
/// that reads the output reports it.
pub(crate) fn numbers_as_text(json: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(json.len() + 64);
    let mut in_string = false;
    let mut escaped = false;
    let mut index = 0;
    while index < json.len() {
        let byte = json[index];
        if in_string {
            out.push(byte);
            if escaped {
                escaped = false;
            } else if byte == b'\\' {
                escaped = true;
            } else if byte == b'"' {
                in_string = false;
            }
            index += 1;
            continue;
        }
        match byte {
            b'"' => {
                in_string = true;
                out.push(byte);
                index += 1;
            }
            b'-' | b'0'..=b'9' => {
                let start = index;
                while index < json.len()
                    && matches!(json[index], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                {
                    index += 1;
                }
                out.push(b'"');
                out.extend_from_slice(&json[start..index]);
                out.push(b'"');
            }
            _ => {
                out.push(byte);
                index += 1;
            }
        }
    }
    out
}

/// Reads one of Dianping's answers with its numbers as text; `what` names it in the error.
pub(crate) fn read<T: serde::de::DeserializeOwned>(
    body: &[u8],
    what: &str,
) -> Result<Envelope<T>, String> {
    serde_json::from_slice(&numbers_as_text(body))
        .map_err(|e| format!("{what} answer from Dianping: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_become_their_exact_text_and_strings_stay() {
        let input =
            br#"{"a":88.80,"b":-1e3,"c":"x\"9.5","d":[0,12345678901234567890],"e":true,"f":null}"#;
        let output = String::from_utf8(numbers_as_text(input)).expect("utf-8");
        assert_eq!(
            output,
            r#"{"a":"88.80","b":"-1e3","c":"x\"9.5","d":["0","12345678901234567890"],"e":true,"f":null}"#
        );
        let value: serde_json::Value = serde_json::from_str(&output).expect("still JSON");
        assert_eq!(value["a"], "88.80");
    }

    #[test]
    fn unicode_and_escaped_backslashes_survive() {
        let input = "{\"t\":\"双人套餐🍕\\\\\",\"p\":1}".as_bytes();
        let output = String::from_utf8(numbers_as_text(input)).expect("utf-8");
        assert_eq!(output, "{\"t\":\"双人套餐🍕\\\\\",\"p\":\"1\"}");
    }

    #[test]
    fn envelope_reads_errors_without_data() {
        let envelope: Envelope<Receipt> =
            read(br#"{"code":1002,"msg":"x"}"#, "consume").expect("reads");
        assert_eq!(envelope.code, "1002");
        assert!(envelope.data.is_none());
    }
}
