//! What we answer Google, in its conventions:
//!
//! - checkout → `CheckoutResponseMessage`: the cart as received, our `otherItems`
//!   (SUBTOTAL, DELIVERY, TAX, …), `totalPrice` and the payment options; or a
//!   `FoodErrorExtension` naming why the order cannot be taken (HTTP 200 either way: the
//!   error is an answer, not a failure);
//! - submit → `SubmitOrderResponseMessage` with an `OrderUpdate` (`CREATED` once stored;
//!   `REJECTED` with `rejectionInfo` for an order we refuse to take);
//! - asynchronous updates → the `OrderUpdate` of each state change.
//!
//! Every `OrderUpdate` carries the `CUSTOMER_SERVICE` action Google requires.

use chrono::{DateTime, SecondsFormat, Utc};
use crossdock_channel::Unservable;
use crossdock_model::{FulfillmentKind, Money, NewOrder, Unroutable};
use serde_json::{Value, json};

use crate::convert::google_money;
use crate::wire::{
    Button, FoodOrderError, FoodOrderUpdateExtension, OpenUrlAction, OrderManagementAction,
    OrderState, OrderUpdate, Receipt, RejectionInfo, TYPE_FOOD_ERROR_EXTENSION,
    TYPE_FOOD_ORDER_EXTENSION, TYPE_FOOD_ORDER_UPDATE_EXTENSION, state,
};

/// RFC 3339 in UTC, as Google writes times (`2017-07-17T12:00:00Z`).
pub(crate) fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// The `CUSTOMER_SERVICE` action (required on every order update).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CustomerService {
    pub title: String,
    pub url: String,
}

impl CustomerService {
    pub(crate) fn actions(&self) -> Vec<OrderManagementAction> {
        vec![OrderManagementAction {
            kind: "CUSTOMER_SERVICE".to_owned(),
            button: Button {
                title: self.title.clone(),
                open_url_action: OpenUrlAction {
                    url: self.url.clone(),
                },
            },
        }]
    }
}

/// An order update with the fields every update carries.
pub(crate) fn order_update(
    action_order_id: &str,
    user_visible_order_id: &str,
    state: &str,
    label: &str,
    at: DateTime<Utc>,
    service: &CustomerService,
) -> OrderUpdate {
    OrderUpdate {
        action_order_id: action_order_id.to_owned(),
        order_state: OrderState {
            state: state.to_owned(),
            label: label.to_owned(),
        },
        update_time: rfc3339(at),
        receipt: Some(Receipt {
            user_visible_order_id: user_visible_order_id.to_owned(),
        }),
        order_management_actions: service.actions(),
        rejection_info: None,
        cancellation_info: None,
        info_extension: None,
    }
}

/// `rejectionInfo.type` for a free-text reason: `UNAVAILABLE_SLOT`, `PAYMENT_DECLINED`,
/// `PROMO_NOT_APPLICABLE`, `INELIGIBLE`, else `UNKNOWN` (keyword matching).
pub(crate) fn rejection_type(reason: &str) -> &'static str {
    let text = reason.to_lowercase();
    let any = |words: &[&str]| words.iter().any(|w| text.contains(w));
    if any(&["slot", "schedul", "too late", "time not available"]) {
        "UNAVAILABLE_SLOT"
    } else if any(&["payment", "card", "declined"]) {
        "PAYMENT_DECLINED"
    } else if any(&["promo", "coupon", "voucher"]) {
        "PROMO_NOT_APPLICABLE"
    } else if any(&["ineligible", "blocked", "fraud", "blacklist"]) {
        "INELIGIBLE"
    } else {
        "UNKNOWN"
    }
}

/// The `FoodOrderError` a free-text reason amounts to, where one fits (keyword matching):
/// `CLOSED`, `NO_CAPACITY`, `OUT_OF_SERVICE_AREA`.
pub(crate) fn food_error_for_reason(reason: &str) -> Option<&'static str> {
    let text = reason.to_lowercase();
    let any = |words: &[&str]| words.iter().any(|w| text.contains(w));
    if any(&["closed", "closing", "paused", "not open"]) {
        Some("CLOSED")
    } else if any(&["busy", "capacity", "overload"]) {
        Some("NO_CAPACITY")
    } else if any(&["area", "zone", "too far", "distance", "address"]) {
        Some("OUT_OF_SERVICE_AREA")
    } else {
        None
    }
}

/// A `REJECTED` update: `rejectionInfo` always, and a `FoodOrderError` in the update
/// extension where the reason names one.
pub(crate) fn rejected(mut update: OrderUpdate, reason: &str) -> OrderUpdate {
    update.rejection_info = Some(RejectionInfo {
        kind: rejection_type(reason).to_owned(),
        reason: Some(reason.to_owned()),
    });
    if let Some(error) = food_error_for_reason(reason) {
        update.info_extension = Some(FoodOrderUpdateExtension {
            type_url: TYPE_FOOD_ORDER_UPDATE_EXTENSION.to_owned(),
            estimated_fulfillment_time_iso8601: None,
            food_order_errors: vec![FoodOrderError {
                error: error.to_owned(),
                id: None,
                description: Some(reason.to_owned()),
            }],
        });
    }
    update
}

/// The `SubmitOrderResponseMessage` carrying `update`.
pub(crate) fn submit_answer(update: &OrderUpdate) -> Value {
    json!({
        "expectUserResponse": false,
        "finalResponse": {
            "richResponse": {
                "items": [
                    { "structuredResponse": { "orderUpdate": update } }
                ]
            }
        }
    })
}

/// The `FoodOrderError` of a quote the chain cannot serve:
///
/// | why | error |
/// |---|---|
/// | outside every delivery zone, or no location to route by | `OUT_OF_SERVICE_AREA` |
/// | the store is closed, paused or not taking this brand | `CLOSED` (`NO_CAPACITY` when the reason says the store is busy) |
/// | the merchant id is not one of the chain's stores | `CLOSED`: for the customer the restaurant takes no orders; `NOT_FOUND` is for items and promotions |
/// | an item or option of the cart is not on the chain's menu | `AVAILABILITY_CHANGED` ("item unavailable"): the customer can take it out of the cart and check out again; the description names the PLU |
/// | the order check refused the cart | `INVALID` |
pub(crate) fn food_error(why: &Unservable) -> FoodOrderError {
    let (error, description) = match why {
        Unservable::Invalid(message) => ("INVALID", message.clone()),
        Unservable::NoStore { kind, reason } => {
            let error = match kind {
                Unroutable::OutOfArea | Unroutable::NoLocation => "OUT_OF_SERVICE_AREA",
                Unroutable::StoreUnavailable
                    if food_error_for_reason(reason) == Some("NO_CAPACITY") =>
                {
                    "NO_CAPACITY"
                }
                Unroutable::StoreUnavailable | Unroutable::UnknownStore => "CLOSED",
                Unroutable::UnknownItem => "AVAILABILITY_CHANGED",
            };
            (error, reason.clone())
        }
    };
    FoodOrderError {
        error: error.to_owned(),
        id: None,
        description: Some(description),
    }
}

/// The `CheckoutResponseMessage` with a `FoodErrorExtension`.
pub(crate) fn checkout_error(errors: Vec<FoodOrderError>, payment_options: &Value) -> Value {
    json!({
        "expectUserResponse": false,
        "finalResponse": {
            "richResponse": {
                "items": [
                    {
                        "structuredResponse": {
                            "error": {
                                "@type": TYPE_FOOD_ERROR_EXTENSION,
                                "foodOrderErrors": errors,
                                "paymentOptions": payment_options,
                            }
                        }
                    }
                ]
            }
        }
    })
}

fn priced_line(id: &str, name: &str, kind: &str, amount: Money) -> Value {
    json!({
        "id": id,
        "name": name,
        "type": kind,
        "price": { "type": "ESTIMATE", "amount": google_money(amount) },
    })
}

/// The `CheckoutResponseMessage` proposing `order` (the quote as the adapter priced it):
/// the cart exactly as Google sent it, then `otherItems` (SUBTOTAL, DELIVERY for delivery
/// orders, TAX, GRATUITY and fees where not zero), `totalPrice`, the fulfilment option the
/// customer chose, and the payment options.
pub(crate) fn checkout_answer(cart: &Value, order: &NewOrder, payment_options: &Value) -> Value {
    let totals = &order.totals;
    let mut other_items = vec![priced_line(
        "subtotal",
        "Subtotal",
        "SUBTOTAL",
        totals.subtotal,
    )];
    if order.fulfillment.kind == FulfillmentKind::Delivery {
        other_items.push(priced_line(
            "delivery",
            "Delivery fee",
            "DELIVERY",
            totals.fees.delivery,
        ));
    }
    for (id, name, amount) in [
        ("service_fee", "Service fee", totals.fees.service),
        (
            "small_order_fee",
            "Small order fee",
            totals.fees.small_order,
        ),
        ("packaging_fee", "Packaging fee", totals.fees.packaging),
        ("other_fee", "Fee", totals.fees.other),
    ] {
        if amount.minor != 0 {
            other_items.push(priced_line(id, name, "FEE", amount));
        }
    }
    other_items.push(priced_line("tax", "Tax", "TAX", totals.tax));
    if totals.tip.minor != 0 {
        other_items.push(priced_line("gratuity", "Tip", "GRATUITY", totals.tip));
    }
    let fulfillment_info = cart
        .pointer("/extension/fulfillmentPreference/fulfillmentInfo")
        .cloned()
        .unwrap_or(Value::Null);
    json!({
        "expectUserResponse": false,
        "finalResponse": {
            "richResponse": {
                "items": [
                    {
                        "structuredResponse": {
                            "checkoutResponse": {
                                "proposedOrder": {
                                    "id": order.external_order_id,
                                    "cart": cart,
                                    "otherItems": other_items,
                                    "totalPrice": {
                                        "type": "ESTIMATE",
                                        "amount": google_money(totals.total),
                                    },
                                    "extension": {
                                        "@type": TYPE_FOOD_ORDER_EXTENSION,
                                        "availableFulfillmentOptions": [
                                            { "fulfillmentInfo": fulfillment_info }
                                        ],
                                    },
                                },
                                "paymentOptions": payment_options,
                            }
                        }
                    }
                ]
            }
        }
    })
}

/// What a customer reads for each state.
pub(crate) fn label(state_name: &str, kind: FulfillmentKind) -> &'static str {
    match state_name {
        state::CREATED => "Order received",
        state::CONFIRMED => "Order confirmed",
        state::IN_PREPARATION => "Your order is being prepared",
        state::READY_FOR_PICKUP => "Ready for pickup",
        state::IN_TRANSIT => "Out for delivery",
        state::FULFILLED if kind == FulfillmentKind::Delivery => "Delivered",
        state::FULFILLED => "Picked up",
        state::REJECTED => "Order could not be accepted",
        state::CANCELLED => "Order cancelled",
        _ => "Order updated",
    }
}
