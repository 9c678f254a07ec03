//! The tap against a real RabbitMQ (`amqp://guest:guest@127.0.0.1:5672/%2f`, or
//! `CROSSDOCK_TEST_AMQP_URL`): it says `Connected` once it consumes, hands over exactly the
//! messages its patterns match, in order, and after its connection is cut it reconnects and
//! says `Connected` again, so a reader knows to read the truth again. Each test uses its own
//! topology prefix; waits are on conditions, never fixed sleeps.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossdock_broker::{
    BrokerConfig, OutgoingMessage, PublishOutcome, Publisher, Tapped, Topology, connect, tap,
};
use crossdock_model::StoreId;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use common::{RemovedOnPanic, WAIT};

fn config(url: String) -> BrokerConfig {
    BrokerConfig {
        url,
        prefix: format!("t-{}", uuid::Uuid::now_v7().simple()),
        store_shards: 2,
        delivery_limit: 10,
        confirm_timeout: Duration::from_secs(10),
    }
}

fn broker_url() -> String {
    std::env::var("CROSSDOCK_TEST_AMQP_URL").unwrap_or_else(|_| BrokerConfig::default().url)
}

async fn publish(publisher: &Publisher, keys: &[&str]) {
    let batch: Vec<OutgoingMessage> = keys
        .iter()
        .enumerate()
        .map(|(n, key)| OutgoingMessage {
            routing_key: (*key).to_owned(),
            message_id: format!("m-{n}-{key}"),
            kind: "test.kind".to_owned(),
            body: format!(r#"{{"key":"{key}"}}"#).into_bytes(),
        })
        .collect();
    let outcomes = publisher.publish_batch(&batch).await;
    assert!(
        outcomes.iter().all(|o| *o == PublishOutcome::Confirmed),
        "{outcomes:?}"
    );
}

/// The next thing the tap said, within [`WAIT`].
async fn next(events: &mut mpsc::UnboundedReceiver<Tapped>) -> Tapped {
    tokio::time::timeout(WAIT, events.recv())
        .await
        .expect("the tap said something in time")
        .expect("the tap is running")
}

fn routing_key(tapped: Tapped) -> String {
    match tapped {
        Tapped::Message(message) => message.routing_key,
        Tapped::Connected => "<connected>".to_owned(),
    }
}

fn start_tap(
    config: BrokerConfig,
    patterns: &[&str],
) -> (
    watch::Sender<bool>,
    mpsc::UnboundedReceiver<Tapped>,
    JoinHandle<()>,
) {
    let (stop, stopped) = watch::channel(false);
    let (sender, events) = mpsc::unbounded_channel();
    let patterns = patterns.iter().map(|p| (*p).to_owned()).collect();
    let task = tokio::spawn(async move {
        tap(config, patterns, stopped, move |tapped| {
            let _ = sender.send(tapped);
        })
        .await
        .expect("valid patterns");
    });
    (stop, events, task)
}

/// Asks the tap to stop and waits for its task to end, within [`WAIT`].
async fn stop_tap(stop: &watch::Sender<bool>, task: JoinHandle<()>) {
    stop.send(true).expect("stop");
    tokio::time::timeout(WAIT, task)
        .await
        .expect("the tap stops when asked")
        .expect("tap task");
}

async fn cleanup(config: &BrokerConfig) {
    let admin = connect(config).await.expect("RabbitMQ reachable");
    let channel = admin.create_channel().await.expect("channel");
    Topology::from_config(config)
        .delete(&channel)
        .await
        .expect("topology deletes");
    let _ = admin.close(200, "test done".into()).await;
}

/// What a store's POS binds ([`Topology::store_patterns`]) hears what is handed to its
/// store and every change of status of its orders, in order, and nothing of another
/// store, dots in the id or not.
#[tokio::test]
async fn a_stores_patterns_hear_all_of_that_store_and_nothing_else() {
    let config = config(broker_url());
    let _removed = RemovedOnPanic(config.clone());
    let topology = Topology::from_config(&config);
    let [nyc, dotted, ldn] =
        ["NYC-001", "BJ.chaoyang.07", "LDN-002"].map(|id| StoreId::parse(id).expect("store id"));
    let patterns: Vec<String> = [&nyc, &dotted]
        .into_iter()
        .flat_map(|store| topology.store_patterns(store))
        .collect();
    let patterns: Vec<&str> = patterns.iter().map(String::as_str).collect();
    let (stop, mut events, task) = start_tap(config.clone(), &patterns);
    assert_eq!(next(&mut events).await, Tapped::Connected);
    let publisher = Publisher::connect(&config).await.expect("publisher");
    let keys = [
        topology.store_routing_key(&nyc),
        topology.status_routing_key(&ldn),
        topology.status_routing_key(&nyc),
        "order.received".to_owned(),
        topology.store_routing_key(&ldn),
        topology.store_routing_key(&dotted),
        topology.status_routing_key(&dotted),
    ];
    publish(
        &publisher,
        &keys.iter().map(String::as_str).collect::<Vec<_>>(),
    )
    .await;
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(routing_key(next(&mut events).await));
    }
    assert_eq!(seen, [0, 2, 5, 6].map(|n| keys[n].clone()));
    // A message published after those arrives next: nothing unmatched slipped in between.
    publish(&publisher, &[keys[1].as_str(), keys[0].as_str()]).await;
    assert_eq!(routing_key(next(&mut events).await), keys[0]);

    stop_tap(&stop, task).await;
    cleanup(&config).await;
}

#[tokio::test]
async fn the_tap_hands_over_exactly_the_matching_messages_in_order() {
    let config = config(broker_url());
    let _removed = RemovedOnPanic(config.clone());
    let (stop, mut events, task) = start_tap(config.clone(), &["store.#", "parking.#"]);
    assert_eq!(next(&mut events).await, Tapped::Connected);
    let publisher = Publisher::connect(&config).await.expect("publisher");
    publish(
        &publisher,
        &[
            "order.received",
            "store.1.NYC-001",
            "sync.own_app",
            "parking.uber_eats",
            "store.0.LDN-002",
        ],
    )
    .await;
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(routing_key(next(&mut events).await));
    }
    assert_eq!(
        seen,
        ["store.1.NYC-001", "parking.uber_eats", "store.0.LDN-002"]
    );
    // A message published after those arrives next: nothing unmatched slipped in between.
    publish(&publisher, &["order.received", "store.1.NYC-001"]).await;
    assert_eq!(routing_key(next(&mut events).await), "store.1.NYC-001");

    stop_tap(&stop, task).await;
    cleanup(&config).await;
}

/// A TCP proxy to the broker whose connections can be cut.
struct Cuttable {
    addr: SocketAddr,
    links: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl Cuttable {
    async fn start(target: SocketAddr) -> Cuttable {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let links: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let kept = links.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let link = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                kept.lock().expect("links").push(link);
            }
        });
        Cuttable {
            addr,
            links,
            accept,
        }
    }

    /// Drops every connection open now (new ones go through).
    fn cut(&self) {
        for link in self.links.lock().expect("links").drain(..) {
            link.abort();
        }
    }
}

/// The broker's `host:port` in `url` (`amqp://user:pass@host:port/vhost`), and the URL with
/// `replacement` in its place.
fn through(url: &str, replacement: &str) -> (String, String) {
    let (scheme, rest) = url.split_once("://").expect("a URL");
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (credentials, host_port) = match authority.rsplit_once('@') {
        Some((credentials, host_port)) => (format!("{credentials}@"), host_port),
        None => (String::new(), authority),
    };
    let host_port = if host_port.contains(':') {
        host_port.to_owned()
    } else {
        format!("{host_port}:5672")
    };
    (
        host_port,
        format!("{scheme}://{credentials}{replacement}/{path}"),
    )
}

#[tokio::test]
async fn after_its_connection_is_cut_the_tap_reconnects_and_says_so() {
    let direct = broker_url();
    let (host_port, proxied) = through(&direct, "127.0.0.1:PORT");
    let target = tokio::net::lookup_host(host_port.as_str())
        .await
        .expect("resolve the broker")
        .next()
        .expect("an address");
    let proxy = Cuttable::start(target).await;
    let mut config = config(proxied.replace("PORT", &proxy.addr.port().to_string()));
    let _removed = RemovedOnPanic(BrokerConfig {
        url: direct.clone(),
        ..config.clone()
    });
    let (stop, mut events, task) = start_tap(config.clone(), &["store.#"]);
    assert_eq!(next(&mut events).await, Tapped::Connected);

    proxy.cut();
    // Whatever it missed meanwhile, it says `Connected` again once it consumes again, and
    // then hands over what is published.
    loop {
        match next(&mut events).await {
            Tapped::Connected => break,
            Tapped::Message(_) => {}
        }
    }
    config.url = direct;
    let publisher = Publisher::connect(&config).await.expect("publisher");
    publish(&publisher, &["store.1.NYC-001"]).await;
    assert_eq!(routing_key(next(&mut events).await), "store.1.NYC-001");

    stop_tap(&stop, task).await;
    proxy.accept.abort();
    cleanup(&config).await;
}

/// A tap asked to stop while its process goes on (the hub's feed when no one watches)
/// closes its connection: the broker deletes its queue, and no longer copies a message
/// to it for nobody.
#[tokio::test]
async fn a_stopped_tap_leaves_no_queue_behind() {
    let config = config(broker_url());
    let _removed = RemovedOnPanic(config.clone());
    let (stop, mut events, task) = start_tap(config.clone(), &["tapped.#"]);
    assert_eq!(next(&mut events).await, Tapped::Connected);
    let publisher = Publisher::connect(&config).await.expect("publisher");
    publish(&publisher, &["tapped.while-tapping"]).await;
    assert_eq!(routing_key(next(&mut events).await), "tapped.while-tapping");

    stop_tap(&stop, task).await;
    let unroutable = OutgoingMessage {
        routing_key: "tapped.after".to_owned(),
        message_id: "after".to_owned(),
        kind: "test.kind".to_owned(),
        body: b"{}".to_vec(),
    };
    tokio::time::timeout(WAIT, async {
        loop {
            let outcome = publisher
                .publish_batch(std::slice::from_ref(&unroutable))
                .await;
            if matches!(outcome[..], [PublishOutcome::Refused { .. }]) {
                break;
            }
        }
    })
    .await
    .expect("no queue takes the tap's messages once it stopped");
    cleanup(&config).await;
}
