"""Item and user prompts: cleaning, caps, skipped attributes, config, training-only users."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from pipeline.errors import InputError
from pipeline.prompts import (
    PromptConfig,
    clean_value,
    item_attribute_pairs,
    item_texts,
    render_item,
    user_texts,
)

PLAIN = PromptConfig(instruction="")
ITEMS = pl.DataFrame({
    "item_id": [2, 1, 3],
    "raw_id": ["b", "a", "c"],
    "title": ["Star Wars", "Brief  Encounter;\n Remastered", None],
    "year": ["1977", "unknown", "1995"],
    "brand_name": ["<b>Lucas</b>film &amp; Co", None, ""],
})


def test_clean_value() -> None:
    assert clean_value("a; b;c", 100) == "a, b,c"  # the separator never appears in a value
    assert clean_value("<p>Tom &amp;\n\t Jerry</p>", 100) == "Tom & Jerry"
    assert clean_value(["x", None, "y"], 100) == "x, y"
    for empty in (None, "", "   ", "unknown", "NaN", "<br/>"):
        assert clean_value(empty, 100) is None
    long = clean_value("word " * 40, 30)
    assert len(long) <= 30 and long.endswith("…") and "  " not in long


def test_item_kv_text_order_and_skips() -> None:
    ids, texts = item_texts(ITEMS, PLAIN)
    assert ids.tolist() == [1, 2, 3] and ids.dtype == np.int64  # sorted by id
    assert texts[0] == "title is Brief Encounter, Remastered"  # "unknown" year skipped
    assert texts[1] == "title is Star Wars; year is 1977; brand name is Lucasfilm & Co"
    assert texts[2] == "year is 1995"  # null title and empty brand skipped
    for t in texts:  # splitting at the separator gives back exactly the attributes
        assert all(" is " in part for part in t.split("; "))


def test_attribute_order_labels_and_instruction() -> None:
    cfg = PromptConfig(attributes=("year", "title"), labels={"title": "name"},
                       item_type="movie", instruction="A {item_type} with these attributes:")
    _, texts = item_texts(ITEMS, cfg)
    assert texts[1] == "A movie with these attributes:\nyear is 1977; name is Star Wars"
    with pytest.raises(InputError, match="'genres'"):
        item_texts(ITEMS, PromptConfig(attributes=("genres",)))


def test_sentence_style() -> None:
    cfg = PromptConfig(style="sentences", item_type="movie", instruction="")
    _, texts = item_texts(ITEMS, cfg)
    assert texts[1] == ("The movie is called Star Wars. It came out in 1977. "
                        "Its brand name is Lucasfilm & Co.")


def test_caps_per_value_and_overall() -> None:
    items = [{"item_id": 1, "raw_id": "x", "title": "t " * 200, "a": "v" * 50, "b": "w" * 50}]
    cfg = PromptConfig(instruction="", max_value_chars=40, max_item_chars=100)
    _, pairs = item_attribute_pairs(items, cfg)
    assert all(len(v) <= 40 for _, v in pairs[0])
    text = render_item(pairs[0], cfg, 1)
    assert len(text) <= 100 and text.startswith("title is t t") and "b is" not in text


def test_no_text_attributes() -> None:
    bare = pl.DataFrame({"item_id": [1, 2], "raw_id": ["x", "y"]})
    with pytest.raises(InputError, match="dataset tiny has no text attributes") as err:
        item_texts(bare, PLAIN, dataset_name="tiny")
    assert "\n" not in str(err.value)
    _, texts = item_texts(bare, PromptConfig(ids_as_text=True), dataset_name="tiny")
    assert texts == ["item 1", "item 2"]
    users = user_texts(bare, [np.array([2, 1])], PromptConfig(ids_as_text=True))
    assert "item 2; item 1" in users[0]


def test_user_text_uses_training_items_only() -> None:
    n = 12
    titles = [f"Ordinary Film {i}" for i in range(1, n + 1)]
    titles[9], titles[10], titles[11] = "VALIDFILM Alpha", "TESTFILM Beta", "VALIDFILM Gamma"
    items = pl.DataFrame({"item_id": range(1, n + 1), "raw_id": [str(i) for i in range(n)],
                          "title": titles})
    sequences = [np.array([1, 2, 3, 10, 11]), np.array([4, 5, 6, 7, 12, 11])]
    train = [s[:-2] for s in sequences]  # what Split.train holds
    texts = user_texts(items, train, PromptConfig())
    for t in texts:
        assert "VALIDFILM" not in t and "TESTFILM" not in t
    assert "Ordinary Film 1; Ordinary Film 2; Ordinary Film 3" in texts[0]  # oldest first


def test_user_text_caps_keep_most_recent() -> None:
    items = pl.DataFrame({"item_id": range(1, 21), "raw_id": [str(i) for i in range(20)],
                          "title": [f"Film {i:02d}" for i in range(1, 21)]})
    seq = [np.arange(1, 21)]
    text = user_texts(items, seq, PromptConfig(user_max_items=3, user_template="{history}"))[0]
    assert text == "Film 18; Film 19; Film 20"
    text = user_texts(items, seq, PromptConfig(user_max_chars=20, user_template="{history}"))[0]
    assert text == "Film 19; Film 20"
    empty = user_texts(items, [np.array([], dtype=np.int64)], PromptConfig(user_template="{history}"))
    assert empty == ["nothing yet"]
