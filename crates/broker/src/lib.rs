//! RabbitMQ layer: topology, confirmed publishing, manual-ack consumers, dead-letter and parking queues, reconnection.
