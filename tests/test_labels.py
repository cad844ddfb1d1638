import pytest

from soundmind_data.core.labels import parse_final_answer, parse_label


@pytest.mark.parametrize("text, expected", [
    ("...\n\nAnswer: entailed.", 1),
    ("...\n\nAnswer: not entailed.", 0),
    ("Answer: not-entailed", 0),
    ("Answer: Not Entailed.", 0),
    ("Answer: **not entailed**", 0),
    ("**Answer:** not entailed", 0),
    ("**Answer: Entailed**", 1),
    ("answer：entailed", 1),
    ("Answer:   NOT-ENTAILED!", 0),
    ("Answer: 'entailed'", 1),
    # only the last Answer: counts
    ("Answer: entailed? Let me check again.\nAnswer: not entailed.", 0),
    ("Answer: not entailed. Wait.\nAnswer: entailed.", 1),
    # undecidable: never guess
    ("The conclusion is entailed.", None),
    ("Answer: maybe", None),
    ("Answer:", None),
    ("", None),
    (None, None),
    ("Answer: entailment is unclear... Answer: unsure", None),
])
def test_parse_final_answer(text, expected):
    assert parse_final_answer(text) == expected


@pytest.mark.parametrize("value, expected", [
    ("entailed", 1), ("not entailed", 0), ("not-entailed", 0), ("Not Entailed", 0), (" entailed ", 1), (0, 0), (1, 1),
])
def test_parse_label(value, expected):
    assert parse_label(value) == expected


@pytest.mark.parametrize("value", ["maybe", "", 2, -1, True, None, 1.0, "entailment"])
def test_parse_label_refuses(value):
    with pytest.raises(ValueError):
        parse_label(value)
