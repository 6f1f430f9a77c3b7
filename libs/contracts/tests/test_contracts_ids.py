import uuid

from stockpit_contracts.ids import UUID_TEXTS, UuidTexts, uuid_text


def test_remembered_uuid_texts_are_exact_and_bounded() -> None:
    texts = UuidTexts(kept=3)
    ids = [uuid.uuid4() for _ in range(10)]
    assert [texts[value] for value in ids] == [str(value) for value in ids]
    assert [texts[value] for value in ids[-2:]] == [str(value) for value in ids[-2:]]
    assert len(texts) <= 3
    value = uuid.uuid4()
    assert uuid_text(value) == str(value)
    assert UUID_TEXTS.get(value) == str(value)
