import os
import uuid

from stockpit_contracts.ids import UUID_TEXTS, UuidTexts, new_uuid, uuid_text


def test_new_uuids_are_random_version_4_uuids() -> None:
    ids = [new_uuid() for _ in range(5000)]
    assert len(set(ids)) == len(ids)
    for value in ids:
        assert value.version == 4
        assert value.variant == uuid.RFC_4122
        # The same value through every door: text, bytes, hash, equality.
        assert uuid.UUID(str(value)) == value
        assert uuid.UUID(bytes=value.bytes) == value
        assert hash(uuid.UUID(int=value.int)) == hash(value)
    # 122 random bits: every free bit position takes both values.
    free = ~((0xF000 << 64) | (0xC000 << 48)) & ((1 << 128) - 1)
    ones = 0
    zeros = 0
    for value in ids:
        ones |= value.int & free
        zeros |= ~value.int & free
    assert ones == free
    assert zeros == free


def test_a_forked_child_does_not_reuse_its_parents_ids() -> None:
    new_uuid()  # the parent has ids drawn and waiting
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        os.close(read)
        os.write(write, "\n".join(str(new_uuid()) for _ in range(100)).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        from_child = {uuid.UUID(line) for line in pipe.read().split()}
    os.waitpid(child, 0)
    from_parent = {new_uuid() for _ in range(100)}
    assert len(from_child) == 100
    assert not from_child & from_parent


def test_remembered_uuid_texts_are_exact_and_bounded() -> None:
    texts = UuidTexts(kept=3)
    ids = [uuid.uuid4() for _ in range(10)]
    assert [texts[value] for value in ids] == [str(value) for value in ids]
    assert [texts[value] for value in ids[-2:]] == [str(value) for value in ids[-2:]]
    assert len(texts) <= 3
    value = uuid.uuid4()
    assert uuid_text(value) == str(value)
    assert UUID_TEXTS.get(value) == str(value)
