"""LC-Rec / UniSRec JSON loader on a fixture, plus the real set when it is present."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.data.config import DataConfig, resolve_dataset
from pipeline.data.prepare import prepare_dataset
from pipeline.data.sources import lcrec
from pipeline.errors import InputError

INTER = {"0": [3, 1, 10], "1": [9, 3, 1, 10], "2": [1, 9, 3], "3": [10, "x", 9]}
ITEMS = {
    "1": {
        "title": "Caliper",
        "description": ["Steel.", "<b>150 mm</b>"],
        "brand": "Mitu",
        "categories": ["Industrial", "Measuring"],
    },
    "3": {"title": "Beaker", "brand": "Pyrex", "categories": "Lab,Glass"},
    "9": {"title": "Gloves", "description": "Nitrile &amp; latex-free", "colour": "blue"},
    "10": {"title": "Goggles"},
    "11": "not an object",
}


def write_lcrec(folder: Path, name: str = "Sci") -> Path:
    folder.mkdir(exist_ok=True)
    (folder / f"{name}.inter.json").write_text(json.dumps(INTER))
    (folder / f"{name}.item.json").write_text(json.dumps(ITEMS, indent=2))
    return folder


def test_lcrec_positions_are_timestamps(tmp_path: Path) -> None:
    raw = lcrec.load(DataConfig(source="lcrec", path=write_lcrec(tmp_path)), tmp_path)
    assert raw.counts == {
        "entries that are not an item index": 1,
        "item entries that are not an object of text fields": 1,
    }
    user0 = raw.interactions.filter(user="0")
    assert user0["item"].to_list() == ["3", "1", "10"]
    assert user0["timestamp"].to_list() == [0, 1, 2]
    assert raw.interactions["rating"].null_count() == raw.interactions.height
    assert raw.text_columns == ["title", "brand", "categories", "description", "colour"]
    items = {r["item"]: r for r in raw.items.to_dicts()}
    assert items["1"]["categories"] == "Industrial, Measuring"
    assert items["1"]["description"] == "Steel. 150 mm"
    assert items["3"]["categories"] == "Lab,Glass"  # strings are kept as written
    assert items["9"]["description"] == "Nitrile & latex-free"


def test_lcrec_prepared_natural_order(tmp_path: Path) -> None:
    cfg = DataConfig(source="lcrec", path=write_lcrec(tmp_path / "src") / "Sci.inter.json")
    ds = prepare_dataset(cfg, tmp_path / "data")
    assert cfg.dataset_name == "Sci"
    assert ds.items["raw_id"].to_list() == ["1", "3", "9", "10"]  # numeric, not "10" < "3"
    assert ds.users["raw_id"].to_list() == ["0", "1", "2"]  # user 3 keeps 2 items: dropped
    assert [s.tolist() for s in ds.sequences] == [[2, 1, 4], [3, 2, 1, 4], [1, 3, 2]]
    assert ds.items.filter(raw_id="10")["brand"].item() is None


def test_lcrec_folder_with_several_files(tmp_path: Path) -> None:
    write_lcrec(tmp_path, "A")
    write_lcrec(tmp_path, "B")
    with pytest.raises(InputError, match=r"several \.inter\.json files \(A.inter.json, B"):
        lcrec.load(DataConfig(source="lcrec", path=tmp_path), tmp_path)
    raw = lcrec.load(DataConfig(source="lcrec", path=tmp_path, name="B"), tmp_path)
    assert raw.name == "B"


def test_lcrec_bad_inputs(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"no \*\.inter\.json file"):
        lcrec.load(DataConfig(source="lcrec", path=tmp_path), tmp_path)
    write_lcrec(tmp_path)
    (tmp_path / "Sci.item.json").unlink()
    with pytest.raises(InputError, match=r"Sci.item.json does not exist"):
        lcrec.load(DataConfig(source="lcrec", path=tmp_path), tmp_path)
    (tmp_path / "Sci.item.json").write_text("{}")
    (tmp_path / "Sci.inter.json").write_text('{"0": [1, 2')
    with pytest.raises(InputError, match=r"Sci.inter.json: not valid JSON"):
        lcrec.load(DataConfig(source="lcrec", path=tmp_path), tmp_path)


REAL = resolve_dataset("amazon-scientific").path  # ../shared/data, never in the repo


@pytest.mark.slow
@pytest.mark.skipif(
    REAL is None or not REAL.is_dir(), reason="../shared/data/amazon-scientific not present"
)
def test_real_amazon_scientific(tmp_path: Path) -> None:
    ds = prepare_dataset(resolve_dataset("amazon-scientific"), tmp_path)
    assert ds.meta["counts"] == {"users": 8317, "items": 4344, "interactions": 58492}
    assert ds.meta["dropped"] == {}
    assert ds.items["title"].null_count() == 0
