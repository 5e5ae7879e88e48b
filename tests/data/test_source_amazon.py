"""Amazon 2014 and 2018 loaders on small fixtures written in the real file formats."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from pipeline.data.config import DataConfig
from pipeline.data.prepare import prepare_dataset
from pipeline.data.sources import amazon
from pipeline.errors import InputError


def write_gz(path: Path, lines: list[bytes]) -> Path:
    with gzip.open(path, "wb") as f:
        for line in lines:
            f.write(line + b"\n")
    return path


def review(user: str, item: str, t: int, rating: float = 5.0) -> bytes:
    return json.dumps(
        {
            "reviewerID": user,
            "asin": item,
            "overall": rating,
            "unixReviewTime": t,
            "reviewText": "fine",
            "reviewTime": "01 1, 2014",
        }
    ).encode()


REVIEWS = [
    review("U1", "B002", 200),
    review("U1", "B001", 100),
    review("U1", "B003", 300),
    review("U2", "B003", 250),
    review("U2", "B002", 50),
    review("U2", "B001", 150, 2.0),
    json.dumps({"asin": "B001", "overall": 4.0, "unixReviewTime": 1}).encode(),  # no user
    b"{not json at all",
    b'{"reviewerID": "U3", "asin": "B\xff", "unixReviewTime": 5}',  # not UTF-8
    b"",
]


def write_2014(folder: Path, category: str = "Beauty") -> Path:
    meta = [
        {
            "asin": "B001",
            "title": "Rose Water Toner",
            "price": 12.5,
            "brand": "Petal",
            "categories": [["Beauty", "Skin Care", "Toners"], ["Beauty", "Fragrance"]],
            "description": "<p>Gentle &amp; <b>soft</b> toner.</p>",
            "salesRank": {"Beauty": 3},
        },
        {
            "asin": "B002",
            "title": "Nail File",
            "categories": [["Beauty", "Nails"]],
            "description": "x" * 40 + " " + "word " * 600,
        },
        {"asin": "B003", "title": "Lip Balm's Best", "brand": "Waxy"},
        {"title": "no asin here"},
    ]
    # The 2014 meta files are Python literals (single quotes), not JSON.
    write_gz(folder / f"meta_{category}.json.gz", [repr(m).encode() for m in meta])
    return write_gz(folder / f"reviews_{category}_5.json.gz", REVIEWS)


def test_2014_reviews_and_literal_meta(tmp_path: Path) -> None:
    write_2014(tmp_path)
    raw = amazon.load(DataConfig(source="amazon", path=tmp_path), tmp_path)
    assert raw.counts == {
        "review lines that are not valid UTF-8": 1,
        "review lines that do not parse as a JSON object": 1,
        "reviews without reviewerID, asin or unixReviewTime": 1,
        "meta lines without asin": 1,
    }
    assert raw.interactions.height == 6
    items = {r["item"]: r for r in raw.items.to_dicts()}
    assert items["B001"]["categories"] == "Beauty, Skin Care, Toners, Fragrance"
    assert items["B001"]["description"] == "Gentle & soft toner."
    assert items["B001"]["price"] == "12.50"
    assert items["B003"]["title"] == "Lip Balm's Best"
    assert items["B003"]["description"] is None
    desc = items["B002"]["description"]
    assert 900 < len(desc) <= 1002 and desc.endswith(" …")


def test_2014_prepared_in_time_order(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    write_2014(tmp_path / "src")
    cfg = DataConfig(source="amazon", path=tmp_path / "src")
    ds = prepare_dataset(cfg, tmp_path / "data")
    assert ds.meta["counts"] == {"users": 2, "items": 3, "interactions": 6}
    assert ds.items["raw_id"].to_list() == ["B001", "B002", "B003"]
    assert [s.tolist() for s in ds.sequences] == [[1, 2, 3], [2, 1, 3]]
    assert ds.meta["dropped"]["reviews without reviewerID, asin or unixReviewTime"] == 1
    assert ds.text_columns == ["title", "brand", "categories", "description", "price"]


def write_2018(folder: Path, category: str = "Industrial_and_Scientific") -> Path:
    meta = [
        {
            "asin": "B001",
            "title": "Digital Caliper",
            "brand": "Mitutoyo",
            "category": ["Industrial &amp; Scientific", "Test, Measure &amp; Inspect"],
            "description": ["Measures <br/>0-150 mm.", "Stainless steel."],
            "price": "$24.99",
            "feature": ["LCD"],
        },
        {
            "asin": "B002",
            "title": "Beaker Set",
            "category": [],
            "description": "",
            "price": ".a-box-inner{background-color:#fff;}",
        },
        {"asin": "B003", "title": "Lab Gloves"},
    ]
    write_gz(folder / f"meta_{category}.json.gz", [json.dumps(m).encode() for m in meta])
    return write_gz(folder / f"{category}_5.json.gz", REVIEWS[:6])


def test_2018_strict_json_meta(tmp_path: Path) -> None:
    reviews = write_2018(tmp_path)
    raw = amazon.load(DataConfig(source="amazon", path=reviews), tmp_path)  # the file itself
    assert raw.counts == {}
    items = {r["item"]: r for r in raw.items.to_dicts()}
    assert items["B001"]["categories"] == "Industrial & Scientific, Test, Measure & Inspect"
    assert items["B001"]["description"] == "Measures 0-150 mm. Stainless steel."
    assert items["B001"]["price"] == "$24.99"
    assert items["B002"]["categories"] is None and items["B002"]["price"] is None
    assert sorted(raw.interactions["rating"].to_list()) == [2.0, 5, 5, 5, 5, 5]


def test_folder_with_several_categories_needs_category(tmp_path: Path) -> None:
    write_2014(tmp_path, "Beauty")
    write_2018(tmp_path, "Toys")
    with pytest.raises(InputError, match=r"several categories.*Beauty, Toys"):
        amazon.load(DataConfig(source="amazon", path=tmp_path), tmp_path)
    raw = amazon.load(DataConfig(source="amazon", path=tmp_path, category="Toys"), tmp_path)
    assert set(raw.items["item"]) == {"B001", "B002", "B003"}
    assert raw.items.filter(item="B001")["title"].item() == "Digital Caliper"


def test_five_core_file_preferred_over_full(tmp_path: Path) -> None:
    write_2014(tmp_path)
    write_gz(tmp_path / "reviews_Beauty.json.gz", [review("U9", "B001", 1)])
    raw = amazon.load(DataConfig(source="amazon", path=tmp_path), tmp_path)
    assert "U9" not in raw.interactions["user"].to_list()


def test_wrong_file_is_one_line_error(tmp_path: Path) -> None:
    write_gz(tmp_path / "meta_Beauty.json.gz", [b"{'asin': 'B001'}"])
    write_gz(tmp_path / "reviews_Beauty_5.json.gz", [b"user,item,rating", b"u1,i1,5"])
    with pytest.raises(InputError) as e:
        amazon.load(DataConfig(source="amazon", path=tmp_path), tmp_path)
    assert "reviews_Beauty_5.json.gz: no line parses" in str(e.value)
    assert "\n" not in str(e.value)


def test_missing_meta_and_not_gzip(tmp_path: Path) -> None:
    write_gz(tmp_path / "reviews_Beauty_5.json.gz", REVIEWS)
    with pytest.raises(InputError, match=r"meta_Beauty\.json\.gz does not exist"):
        amazon.load(DataConfig(source="amazon", path=tmp_path), tmp_path)
    write_gz(tmp_path / "meta_Beauty.json.gz", [b"{'asin': 'B001'}"])
    (tmp_path / "reviews_Beauty_5.json.gz").write_bytes(b"plain text, not gzip\n")
    with pytest.raises(InputError, match="not a readable gzip file"):
        amazon.load(DataConfig(source="amazon", path=tmp_path), tmp_path)
