import json
import uuid

from kafka import KafkaConsumer, KafkaProducer, TopicPartition


def test_broker_delivers_to_a_consumer_group(kafka_bootstrap: str):
    """A message produced to the broker reaches a consumer group, and its commit sticks."""
    topic = f"smoke-{uuid.uuid4().hex[:8]}"
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    producer.send(topic, json.dumps({"hello": "world"}).encode()).get(timeout=10)
    producer.close()
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        group_id=f"group-{topic}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_poll_interval_ms=10_000,
        session_timeout_ms=6_000,
        heartbeat_interval_ms=1_000,
    )
    try:
        records = []
        for _ in range(40):
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
            if records:
                break
        assert [json.loads(r.value) for r in records] == [{"hello": "world"}]
        consumer.commit()
        partition = records[0].partition
        assert consumer.committed(TopicPartition(topic, partition)) == records[0].offset + 1
    finally:
        consumer.close()
