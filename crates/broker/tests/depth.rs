//! Queue depths against a real RabbitMQ (`amqp://guest:guest@127.0.0.1:5672/%2f`, or
//! `CROSSDOCK_TEST_AMQP_URL`): published messages show in the depth of their queue, a missing
//! queue is left out, and a broker that is down or silent makes a read fail within its
//! timeout. Each test declares its own topology under a random prefix and deletes it at the
//! end; the broker's counts are polled on a condition, never after a fixed sleep.

mod common;

use std::time::{Duration, Instant};

use crossdock_broker::{
    BrokerConfig, BrokerError, DepthProbe, OutgoingMessage, PublishOutcome, Publisher, QueueDepth,
    Topology, connect, queue_depths, topology_queues,
};

use common::{RemovedOnPanic, eventually};

/// Bound of one depth read in these tests.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

fn config() -> BrokerConfig {
    BrokerConfig {
        url: std::env::var("CROSSDOCK_TEST_AMQP_URL")
            .unwrap_or_else(|_| BrokerConfig::default().url),
        prefix: format!("t-{}", uuid::Uuid::now_v7().simple()),
        store_shards: 2,
        delivery_limit: 10,
        confirm_timeout: Duration::from_secs(10),
    }
}

fn message(routing_key: &str, id: usize) -> OutgoingMessage {
    OutgoingMessage {
        routing_key: routing_key.to_owned(),
        message_id: format!("m-{id}"),
        kind: "test.kind".to_owned(),
        body: b"{}".to_vec(),
    }
}

fn depth_of(depths: &[QueueDepth], queue: &str) -> Option<u32> {
    depths.iter().find(|d| d.queue == queue).map(|d| d.messages)
}

async fn declare(config: &BrokerConfig, topology: &Topology) -> lapin::Connection {
    let admin = connect(config).await.expect("RabbitMQ reachable");
    let channel = admin.create_channel().await.expect("channel opens");
    topology
        .declare(&channel, config.delivery_limit)
        .await
        .expect("topology declares");
    admin
}

async fn cleanup(admin: lapin::Connection, topology: &Topology) {
    let channel = admin.create_channel().await.expect("channel opens");
    topology.delete(&channel).await.expect("topology deletes");
    let _ = admin.close(200, "test done".into()).await;
}

#[tokio::test]
async fn published_messages_show_in_their_queues_depth_and_missing_queues_are_left_out() {
    let config = config();
    let _removed = RemovedOnPanic(config.clone());
    let topology = Topology::from_config(&config);
    let admin = declare(&config, &topology).await;

    let publisher = Publisher::connect(&config)
        .await
        .expect("publisher connects");
    let mut batch: Vec<OutgoingMessage> = (0..3).map(|n| message("order.received", n)).collect();
    batch.push(message("sync.own_app", 3));
    let outcomes = publisher.publish_batch(&batch).await;
    assert!(
        outcomes.iter().all(|o| *o == PublishOutcome::Confirmed),
        "{outcomes:?}"
    );

    // A queue that does not exist, in the middle: left out, and the queues after it are
    // still read (its 404 closes the channel, not the connection).
    let missing = format!("{}.no-such-queue", config.prefix);
    let mut queues = topology_queues(&topology);
    queues.insert(2, missing.clone());

    let probe = DepthProbe::new(config.clone(), READ_TIMEOUT);
    let depths = eventually("the orders queue at 3 and the sync queue at 1", || async {
        let depths = probe.depths(&queues).await.expect("depths read");
        (depth_of(&depths, &topology.orders_queue()) == Some(3)
            && depth_of(&depths, &topology.sync_queue()) == Some(1))
        .then_some(depths)
    })
    .await;
    let read: Vec<&str> = depths.iter().map(|d| d.queue.as_str()).collect();
    let expected = topology_queues(&topology);
    assert_eq!(
        read, expected,
        "every existing queue, in order, nothing else"
    );
    for depth in &depths {
        if depth.queue != topology.orders_queue() && depth.queue != topology.sync_queue() {
            assert_eq!(depth.messages, 0, "{depth:?}");
        }
        assert_eq!(depth.consumers, 0, "{depth:?}");
    }

    // The probe's connection is kept and reused; a one-off read agrees with it.
    let again = probe.depths(&queues).await.expect("second read");
    assert_eq!(again, depths);
    let once = queue_depths(&config, &queues, READ_TIMEOUT)
        .await
        .expect("one-off read");
    assert_eq!(once, depths);

    drop(publisher);
    cleanup(admin, &topology).await;
}

#[tokio::test]
async fn a_broker_that_is_down_or_silent_fails_the_read_within_its_timeout() {
    let queues = vec!["nothing.orders".to_owned()];

    // Nothing listens: refused at once.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let closed_port = closed.local_addr().expect("address").port();
    drop(closed);
    let down = BrokerConfig {
        url: format!("amqp://guest:guest@127.0.0.1:{closed_port}/%2f"),
        ..config()
    };
    let started = Instant::now();
    let result = DepthProbe::new(down, Duration::from_secs(2))
        .depths(&queues)
        .await;
    assert!(result.is_err(), "{result:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );

    // A listener that accepts and never answers the AMQP handshake: the timeout ends it.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let silent_port = silent.local_addr().expect("address").port();
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket);
        }
    });
    let stalled = BrokerConfig {
        url: format!("amqp://guest:guest@127.0.0.1:{silent_port}/%2f"),
        ..config()
    };
    let started = Instant::now();
    let result = queue_depths(&stalled, &queues, Duration::from_millis(300)).await;
    assert!(
        matches!(result, Err(BrokerError::Timeout { .. })),
        "{result:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let result = DepthProbe::new(stalled, Duration::from_millis(300))
        .depths(&queues)
        .await;
    assert!(
        matches!(result, Err(BrokerError::Timeout { .. })),
        "{result:?}"
    );
    holder.abort();
}
