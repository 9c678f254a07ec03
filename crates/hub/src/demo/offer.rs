//! Offering an order as its platform does: each simulator places it (signed, in its own
//! format), the answer is read in the platform's convention, and — as platforms retry a
//! webhook that got no 2xx — the same request can be sent again, byte for byte. The demo
//! places its orders with [`offer`]; the fault suite also re-sends them with [`resend`].

use anyhow::Context;
use crossdock_adapter_uber_eats::Generation;
use crossdock_channel::sim::{SampleOrder, WebhookAnswer};
use serde_json::{Value, json};

use super::{PLACE_TIMEOUT, Sims};

/// How to send an offered order's request again.
#[derive(Debug, Clone)]
pub enum Resend {
    OwnApp(Box<crossdock_adapter_own_app::simulator::PlacedOrder>),
    UberEats {
        event_id: String,
    },
    DoorDash {
        external_order_id: String,
    },
    Deliveroo {
        guid: String,
    },
    Meituan {
        key: String,
    },
    Eleme {
        request_id: String,
    },
    Google {
        order_id: String,
    },
    /// A voucher redeemed at the store through the hub's API, redeemed again.
    Dianping {
        code: String,
        token: String,
    },
    /// The POS numbers a sale anew when it posts again: no resend.
    Nothing,
}

/// One order offered to the hub.
#[derive(Debug, Clone)]
pub struct Offered {
    pub channel: &'static str,
    /// The platform's order id (`None` if the simulator could not even build one).
    pub external_order_id: Option<String>,
    /// Whether the hub acknowledged it as the platform expects.
    pub acked: bool,
    /// The hub's last answer (status 0: the simulator could not reach the hub).
    pub answer: WebhookAnswer,
    pub resend: Resend,
}

impl Offered {
    /// The hub's last answer in a line: its status and the start of its body.
    pub fn answer_line(&self) -> String {
        let mut body = self.answer.body.clone();
        body.truncate(200);
        format!("{} {body}", self.answer.status)
    }
}

/// The answer in the platform's convention meaning "taken" (an order, or any other
/// webhook of the channel: a cancellation, a courier's event).
pub fn acknowledged(channel: &str, answer: &WebhookAnswer) -> bool {
    match channel {
        "own_app" | "doordash" => answer.status == 202,
        "uber_eats" | "deliveroo" | "google" => answer.status == 200,
        "meituan" => answer.status == 200 && answer.body == r#"{"data":"ok"}"#,
        "eleme" => answer.status == 200 && answer.body == r#"{"message":"ok"}"#,
        _ => (200..300).contains(&answer.status),
    }
}

/// Places `sample` on the channel's simulator (Uber Eats on API `generation`). `hub` and
/// `token` serve Dianping, whose vouchers the store redeems through the hub's API.
pub async fn offer(
    sims: &Sims,
    channel: &'static str,
    generation: Generation,
    sample: &SampleOrder,
    http: &reqwest::Client,
    hub: &str,
    token: Option<&str>,
) -> anyhow::Result<Offered> {
    fn sim<T>(sim: &Option<T>) -> anyhow::Result<&T> {
        sim.as_ref().context("the simulator is not running")
    }
    let offered = |external_order_id: String, answer: &WebhookAnswer, resend: Resend| Offered {
        channel,
        acked: acknowledged(channel, answer),
        answer: answer.clone(),
        external_order_id: Some(external_order_id),
        resend,
    };
    Ok(match channel {
        "own_app" => {
            let placed = sim(&sims.own_app)?.place_order(sample).await;
            offered(
                placed.external_order_id.clone(),
                &placed.answer,
                Resend::OwnApp(Box::new(placed.clone())),
            )
        }
        "uber_eats" => {
            let placed = sim(&sims.uber_eats)?
                .place_order_with(sample, generation)
                .await;
            offered(
                placed.external_order_id,
                &placed.answer,
                Resend::UberEats {
                    event_id: placed.event_id,
                },
            )
        }
        "pos" => {
            let posted = sim(&sims.pos)?.place_order(sample).await?;
            Offered {
                channel,
                acked: posted.accepted(),
                answer: posted.answer.clone(),
                external_order_id: posted.external_order_id.clone(),
                resend: Resend::Nothing,
            }
        }
        "doordash" => {
            let placed = sim(&sims.doordash)?.place_order(sample).await;
            let id = placed.external_order_id.clone();
            offered(
                id.clone(),
                &placed.answer,
                Resend::DoorDash {
                    external_order_id: id,
                },
            )
        }
        "deliveroo" => {
            let placed = sim(&sims.deliveroo)?.place_order(sample).await;
            offered(
                placed.external_order_id,
                &placed.answer,
                Resend::Deliveroo { guid: placed.guid },
            )
        }
        "meituan" => {
            let placed = sim(&sims.meituan)?.place_order(sample).await;
            let key = format!("{}:order", placed.order_id);
            offered(placed.order_id, &placed.answer, Resend::Meituan { key })
        }
        "eleme" => {
            let placed = sim(&sims.eleme)?.place_order(sample).await;
            offered(
                placed.external_order_id,
                &placed.answer,
                Resend::Eleme {
                    request_id: placed.request_id,
                },
            )
        }
        "google" => {
            let placed = sim(&sims.google)?.place_order(sample).await;
            let id = placed.external_order_id.clone();
            offered(id.clone(), &placed.answer, Resend::Google { order_id: id })
        }
        "dianping" => {
            let sold = sim(&sims.dianping)?.sell_sample(sample);
            let code = sold
                .codes
                .first()
                .context("the sale made no voucher")?
                .clone();
            let token = token.context("no token for the store")?.to_owned();
            let (answer, external_order_id) = redeem(http, hub, &token, &code).await;
            Offered {
                channel,
                acked: (200..300).contains(&answer.status),
                answer,
                external_order_id,
                resend: Resend::Dianping { code, token },
            }
        }
        other => anyhow::bail!("no simulator for channel {other}"),
    })
}

/// Redeems a Dianping voucher at the hub as the store would.
async fn redeem(
    http: &reqwest::Client,
    hub: &str,
    token: &str,
    code: &str,
) -> (WebhookAnswer, Option<String>) {
    let sent = http
        .post(format!("{hub}/api/v1/codes/redeem"))
        .bearer_auth(token)
        .json(&json!({ "channel": "dianping", "code": code, "count": 1 }))
        .timeout(PLACE_TIMEOUT)
        .send()
        .await;
    match sent {
        Ok(response) => {
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            let id = body["external_order_id"].as_str().map(str::to_owned);
            (
                WebhookAnswer {
                    status,
                    body: body.to_string(),
                },
                id,
            )
        }
        Err(error) => (
            WebhookAnswer {
                status: 0,
                body: error.to_string(),
            },
            None,
        ),
    }
}

/// Sends the offered order's request again; updates `acked` and `answer`. `false` if the
/// channel has no resend.
pub async fn resend(sims: &Sims, offered: &mut Offered, http: &reqwest::Client, hub: &str) -> bool {
    let answer = match &offered.resend {
        Resend::OwnApp(placed) => match &sims.own_app {
            Some(sim) => Some(sim.resend(placed).await),
            None => None,
        },
        Resend::UberEats { event_id } => match &sims.uber_eats {
            Some(sim) => sim.resend_webhook(event_id).await,
            None => None,
        },
        Resend::DoorDash { external_order_id } => match &sims.doordash {
            Some(sim) => sim.resend_order(external_order_id).await,
            None => None,
        },
        Resend::Deliveroo { guid } => match &sims.deliveroo {
            Some(sim) => sim.resend_webhook(guid).await,
            None => None,
        },
        Resend::Meituan { key } => match &sims.meituan {
            Some(sim) => sim.resend(key).await,
            None => None,
        },
        Resend::Eleme { request_id } => match &sims.eleme {
            Some(sim) => sim.resend(request_id).await,
            None => None,
        },
        Resend::Google { order_id } => match &sims.google {
            Some(sim) => sim.resend_submit(order_id).await,
            None => None,
        },
        Resend::Dianping { code, token } => {
            let (answer, id) = redeem(http, hub, token, code).await;
            if id.is_some() {
                offered.external_order_id = id;
            }
            Some(answer)
        }
        Resend::Nothing => None,
    };
    let Some(answer) = answer else {
        return false;
    };
    offered.acked = acknowledged(offered.channel, &answer);
    offered.answer = answer;
    true
}
