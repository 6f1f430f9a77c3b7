"""Which payload types each topic carries: what services subscribe to and declare they publish."""

from stockpit_contracts import ALL_TOPICS, PAYLOAD_TYPES, topic_payload_types


def test_every_payload_type_is_carried_by_the_one_topic_it_names() -> None:
    carried = [payload_type for topic in ALL_TOPICS for payload_type in topic_payload_types(topic)]
    assert sorted(carried, key=lambda p: p.EVENT_TYPE) == sorted(
        PAYLOAD_TYPES.values(), key=lambda p: p.EVENT_TYPE
    )
    for topic in ALL_TOPICS:
        types = topic_payload_types(topic)
        assert types, f"{topic.base_name} carries nothing"
        assert all(topic == payload_type.TOPIC for payload_type in types)
        assert [p.EVENT_TYPE for p in types] == sorted(p.EVENT_TYPE for p in types)
