"""Yelp loader on a fixture in the academic dataset's json-lines format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.data.config import DataConfig
from pipeline.data.prepare import prepare_dataset
from pipeline.data.sources import yelp
from pipeline.errors import InputError


def review(user: str, business: str, date: str, stars: float = 4.0) -> str:
    return json.dumps(
        {
            "review_id": f"r-{user}-{business}",
            "user_id": user,
            "business_id": business,
            "stars": stars,
            "useful": 0,
            "text": "Nice place",
            "date": date,
        }
    )


def write_yelp(folder: Path) -> None:
    reviews = [
        review("uA", "b2", "2018-01-02 00:00:00"),
        review("uA", "b1", "2018-01-01 00:00:00"),
        review("uA", "b3", "2018-01-03"),  # older releases: date only
        review("uB", "b3", "2019-06-01 12:30:00", 1.0),
        review("uB", "b1", "2019-06-01 12:00:00"),
        review("uB", "b2", "2019-06-02 08:00:00"),
        review("uB", "b4", "yesterday"),  # unreadable date
        json.dumps({"business_id": "b1", "stars": 5, "date": "2019-01-01 00:00:00"}),
        "[1, 2, 3]",  # JSON, but not an object
    ]
    (folder / yelp.REVIEWS).write_text("\n".join(reviews) + "\n")
    businesses = [
        {
            "business_id": "b1",
            "name": "Tasty Bakery",
            "city": "Tucson",
            "state": "AZ",
            "categories": "Food,Bakeries",
            "stars": 4.5,
        },
        {
            "business_id": "b2",
            "name": "Joe's Coffee",
            "city": "Reno",
            "state": "NV",
            "categories": "Coffee & Tea, Food",
            "stars": 4.0,
        },
        {
            "business_id": "b3",
            "name": "Fix-It",
            "city": "Boise",
            "state": "ID",
            "categories": None,
            "stars": 3.0,
        },
    ]
    (folder / yelp.BUSINESSES).write_text("\n".join(json.dumps(b) for b in businesses) + "\n")


def test_yelp_reviews_and_businesses(tmp_path: Path) -> None:
    write_yelp(tmp_path)
    raw = yelp.load(DataConfig(source="yelp", path=tmp_path), tmp_path)
    assert raw.counts == {
        "review lines that do not parse as a JSON object": 1,
        "reviews without user_id, business_id or date": 1,
        "reviews with an unreadable date": 1,
    }
    ts = dict(
        zip(
            raw.interactions["item"].filter(raw.interactions["user"] == "uA"),
            raw.interactions["timestamp"].filter(raw.interactions["user"] == "uA"),
            strict=True,
        )
    )
    assert ts == {"b1": 1514764800, "b2": 1514851200, "b3": 1514937600}  # UTC seconds
    items = {r["item"]: r for r in raw.items.to_dicts()}
    assert items["b1"] == {
        "item": "b1",
        "name": "Tasty Bakery",
        "city": "Tucson",
        "state": "AZ",
        "categories": "Food, Bakeries",
    }
    assert items["b3"]["categories"] is None


def test_yelp_prepared(tmp_path: Path) -> None:
    (tmp_path / "yelp").mkdir()
    write_yelp(tmp_path / "yelp")
    ds = prepare_dataset(DataConfig(source="yelp", path=tmp_path / "yelp"), tmp_path / "data")
    assert ds.meta["counts"] == {"users": 2, "items": 3, "interactions": 6}
    assert ds.users["raw_id"].to_list() == ["uA", "uB"]
    assert [s.tolist() for s in ds.sequences] == [[1, 2, 3], [1, 3, 2]]
    assert ds.text_columns == ["name", "city", "state", "categories"]


def test_yelp_missing_business_file(tmp_path: Path) -> None:
    write_yelp(tmp_path)
    (tmp_path / yelp.BUSINESSES).unlink()
    with pytest.raises(InputError, match=r"yelp_academic_dataset_business\.json does not exist"):
        yelp.load(DataConfig(source="yelp", path=tmp_path), tmp_path)


def test_yelp_wrong_file(tmp_path: Path) -> None:
    write_yelp(tmp_path)
    (tmp_path / yelp.REVIEWS).write_text("user_id,business_id\nuA,b1\n")
    with pytest.raises(InputError, match="no line parses as a review record"):
        yelp.load(DataConfig(source="yelp", path=tmp_path), tmp_path)
