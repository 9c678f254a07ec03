//! The floor: what PostgreSQL and RabbitMQ allow per order on this machine with nothing of
//! the hub in the way. Per order, one transaction inserting the order row (the hub's
//! unified document, under the same unique key as the hub's `orders`), then one
//! persistent publish to a quorum queue awaited until the broker confirms it, consumed
//! and acked one by one by a consumer; `concurrency` orders at once, as many as the hub
//! holds database connections. Measured through the bare clients (tokio-postgres,
//! lapin), in the run's own table and queue, which are dropped afterwards.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Confirmation, Connection, ConnectionProperties};
use serde::Serialize;
use tokio_postgres::NoTls;

use crate::stats::{Latency, Samples};

/// What the floor came to.
#[derive(Debug, Clone, Serialize)]
pub struct Floor {
    pub orders: u64,
    pub concurrency: usize,
    pub seconds: f64,
    /// Orders per second, from the first insert to the last message consumed.
    pub per_second: f64,
    /// What one order waits for: its commit and its publish's confirm.
    pub commit_and_confirm: Latency,
    /// From the start of the order's insert until the consumer has its message.
    pub to_consumer: Latency,
}

/// The order document every floor order stores: one of the own app's fixtures as the hub
/// normalized it (3 KB of JSON, three lines with modifiers).
const ORDER_FIXTURE: &str = "fixtures/own_app/discount_fees_tip_nyc.expected.json";

/// Measures the floor on the database at `database_url` and the broker at `amqp_url`,
/// naming its table and queue after `prefix`.
pub async fn measure(
    database_url: &str,
    amqp_url: &str,
    prefix: &str,
    concurrency: usize,
    orders: u64,
) -> anyhow::Result<Floor> {
    let fixture = crate::repo_root().join(ORDER_FIXTURE);
    let text = std::fs::read_to_string(&fixture)
        .with_context(|| format!("reading {}", fixture.display()))?;
    let document: serde_json::Value = serde_json::from_str(&text)?;
    let order = Arc::new(document["order"].clone());
    let table = format!("floor_{}", prefix.replace(['-', '.'], "_"));
    let queue = format!("{prefix}.floor");

    let mut clients = Vec::with_capacity(concurrency);
    for _ in 0..concurrency.max(1) {
        let (client, connection) = tokio_postgres::connect(database_url, NoTls)
            .await
            .context("connecting to PostgreSQL")?;
        tokio::spawn(connection);
        clients.push(client);
    }
    clients[0]
        .batch_execute(&format!(
            "CREATE TABLE {table} (id uuid PRIMARY KEY, channel text NOT NULL,
                 external_order_id text NOT NULL, doc jsonb NOT NULL,
                 received_at timestamptz NOT NULL, UNIQUE (channel, external_order_id))"
        ))
        .await
        .context("creating the floor's table")?;

    let broker = Connection::connect(amqp_url, ConnectionProperties::default())
        .await
        .context("connecting to RabbitMQ")?;
    let publish_channel = broker.create_channel().await?;
    publish_channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    let mut arguments = FieldTable::default();
    arguments.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    publish_channel
        .queue_declare(
            queue.as_str().into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            arguments,
        )
        .await
        .context("declaring the floor's queue")?;

    // The consumer: acks each message and notes when it had it.
    let consume_channel = broker.create_channel().await?;
    consume_channel
        .basic_qos(200, BasicQosOptions::default())
        .await?;
    let mut consumer = consume_channel
        .basic_consume(
            queue.as_str().into(),
            "floor".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let started = Instant::now();
    let consumed = tokio::spawn(async move {
        let mut arrivals = Vec::with_capacity(usize::try_from(orders).unwrap_or(0));
        while arrivals.len() < arrivals.capacity() {
            let Some(Ok(delivery)) = consumer.next().await else {
                break;
            };
            let at = started.elapsed();
            let index: Option<usize> = std::str::from_utf8(&delivery.data)
                .ok()
                .and_then(|body| body.parse().ok());
            delivery.acker.ack(BasicAckOptions::default()).await?;
            if let Some(index) = index {
                arrivals.push((index, at));
            }
        }
        anyhow::Ok(arrivals)
    });

    // The orders, `concurrency` at once: each worker takes the next number.
    let next = Arc::new(AtomicU64::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for client in clients {
        let next = next.clone();
        let order = order.clone();
        let channel = publish_channel.clone();
        let table = table.clone();
        let queue = queue.clone();
        workers.spawn(async move {
            let insert = client
                .prepare(&format!(
                    "INSERT INTO {table} (id, channel, external_order_id, doc, received_at)
                     VALUES ($1, 'floor', $2, $3, now())"
                ))
                .await?;
            let mut done = Vec::new();
            let mut client = client;
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= orders {
                    break;
                }
                let began = started.elapsed();
                let tx = client.transaction().await?;
                tx.execute(
                    &insert,
                    &[&uuid::Uuid::now_v7(), &format!("floor-{index}"), &*order],
                )
                .await?;
                tx.commit().await?;
                let confirm = channel
                    .basic_publish(
                        "".into(),
                        queue.as_str().into(),
                        BasicPublishOptions::default(),
                        index.to_string().as_bytes(),
                        BasicProperties::default()
                            .with_delivery_mode(2)
                            .with_content_type("application/json".into()),
                    )
                    .await?
                    .await?;
                anyhow::ensure!(
                    matches!(confirm, Confirmation::Ack(_) | Confirmation::NotRequested),
                    "the broker did not confirm a floor message: {confirm:?}"
                );
                done.push((index, began, started.elapsed()));
            }
            anyhow::Ok(done)
        });
    }
    let mut begun = vec![Duration::ZERO; usize::try_from(orders).unwrap_or(0)];
    let mut waits = Samples::default();
    while let Some(joined) = workers.join_next().await {
        for (index, began, confirmed) in joined?? {
            waits.push(confirmed - began);
            if let Some(slot) = begun.get_mut(usize::try_from(index).unwrap_or(usize::MAX)) {
                *slot = began;
            }
        }
    }
    let arrivals = tokio::time::timeout(Duration::from_secs(60), consumed)
        .await
        .context("the floor's consumer did not get every message within a minute")???;
    let seconds = arrivals
        .iter()
        .map(|(_, at)| *at)
        .max()
        .unwrap_or_default()
        .as_secs_f64();
    let mut to_consumer = Samples::default();
    for (index, at) in &arrivals {
        if let Some(began) = begun.get(*index) {
            to_consumer.push(at.saturating_sub(*began));
        }
    }
    let _ = publish_channel
        .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
        .await;
    let _ = broker.close(200, "floor measured".into()).await;
    let (client, connection) = tokio_postgres::connect(database_url, NoTls).await?;
    tokio::spawn(connection);
    client
        .batch_execute(&format!("DROP TABLE {table}"))
        .await
        .context("dropping the floor's table")?;
    Ok(Floor {
        orders: arrivals.len() as u64,
        concurrency,
        seconds,
        per_second: arrivals.len() as f64 / seconds.max(f64::EPSILON),
        commit_and_confirm: waits.summary(),
        to_consumer: to_consumer.summary(),
    })
}
