"""The packaged SmolLM2 (GGUF -> cached folder) and MiniLM on real movie texts: value-level facts."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from pipeline.llm import LLMSpec, TextEncoder, load_model
from pipeline.llm.loading import SOURCE_NOTE
from pipeline.methods.semantic.encode import centre_normalise
from pipeline.prompts import PromptConfig, item_texts

pytestmark = pytest.mark.slow

# (title, year, genres) as in MovieLens-100k's prepared items.
MOVIES = [
    ("Star Wars", "1977", "Action, Adventure, Romance, Sci-Fi, War"),
    ("Return of the Jedi", "1983", "Action, Adventure, Romance, Sci-Fi, War"),
    ("Empire Strikes Back, The", "1980", "Action, Adventure, Drama, Romance, Sci-Fi, War"),
    ("Star Trek: First Contact", "1996", "Action, Adventure, Sci-Fi"),
    ("Sense and Sensibility", "1995", "Drama, Romance"),
    ("Emma", "1996", "Drama, Romance"),
    ("Persuasion", "1995", "Romance"),
    ("Toy Story", "1995", "Animation, Children's, Comedy"),
    ("Aladdin", "1992", "Animation, Children's, Comedy, Musical"),
    ("Lion King, The", "1994", "Animation, Children's, Musical"),
    ("Scream", "1996", "Horror, Thriller"),
    ("Nightmare on Elm Street, A", "1984", "Horror"),
    ("Fargo", "1996", "Crime, Drama, Thriller"),
    ("Pulp Fiction", "1994", "Crime, Drama"),
    ("Godfather, The", "1972", "Action, Crime, Drama"),
    ("Casablanca", "1942", "Drama, Romance, War"),
    ("Groundhog Day", "1993", "Comedy, Romance"),
    ("Mrs. Doubtfire", "1993", "Comedy"),
    ("Apollo 13", "1995", "Action, Drama, Thriller"),
    ("Twister", "1996", "Action, Adventure, Thriller"),
]


@pytest.fixture(scope="module")
def texts() -> list[str]:
    items = [{"item_id": i + 1, "raw_id": str(i + 1), "title": t, "year": y, "genres": g}
             for i, (t, y, g) in enumerate(MOVIES)]
    return item_texts(items, PromptConfig(item_type="movie"))[1]


@pytest.fixture(scope="module")
def model_cache(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """pytest's cache folder (kept between runs, so the ~30 s GGUF conversion happens once)."""
    cache = getattr(request.config, "cache", None)
    return Path(cache.mkdir("llm4srs-models")) if cache else tmp_path_factory.mktemp("models")


def _sim(v: np.ndarray, a: str, b: str) -> float:
    titles = [m[0] for m in MOVIES]
    return float(v[titles.index(a)] @ v[titles.index(b)])


def test_smollm2_from_gguf(texts: list[str], model_cache: Path) -> None:
    loaded = load_model(LLMSpec(source="smollm2", device="cpu"), model_cache)
    note = json.loads((loaded.folder / SOURCE_NOTE).read_text())
    assert note["sha256"] == loaded.weights_hash and loaded.folder.name.startswith("smollm2-")
    start = time.perf_counter()
    again = load_model(LLMSpec(source="smollm2", device="cpu", dtype="fp32"), model_cache)
    assert time.perf_counter() - start < 30  # the converted folder, not a second dequantisation
    assert loaded.hidden_size == 576 and loaded.model.config.num_hidden_layers == 30

    raw = TextEncoder(loaded, progress=False).encode(texts)  # [20, 576]
    raw32 = TextEncoder(again, progress=False).encode(texts)
    assert raw.shape == (20, 576)
    v, _ = centre_normalise(raw)
    v32, _ = centre_normalise(raw32)
    assert np.mean(np.sum(v * v32, axis=1)) > 0.98  # auto dtype (bf16 here) ≈ fp32
    assert _sim(v, "Star Wars", "Return of the Jedi") > _sim(v, "Star Wars", "Sense and Sensibility")
    assert _sim(v, "Star Wars", "Empire Strikes Back, The") > _sim(v, "Star Wars", "Emma")
    assert _sim(v, "Toy Story", "Aladdin") > _sim(v, "Toy Story", "Scream")


def test_minilm_matches_sentence_transformers(texts: list[str], model_cache: Path) -> None:
    from sentence_transformers import SentenceTransformer

    loaded = load_model(LLMSpec(source="minilm", device="cpu", dtype="fp32"), model_cache)
    assert loaded.hidden_size == 384 and loaded.pooling == "mean"
    raw = TextEncoder(loaded, progress=False).encode(texts)  # [20, 384]
    ref = SentenceTransformer(str(loaded.source.folder), device="cpu").encode(texts)
    unit = raw / np.linalg.norm(raw, axis=1, keepdims=True)
    assert np.min(np.sum(unit * ref, axis=1)) > 0.999  # same pooling as the ST pipeline
    v, _ = centre_normalise(raw)
    assert _sim(v, "Star Wars", "Return of the Jedi") > _sim(v, "Star Wars", "Sense and Sensibility")
    assert _sim(v, "Sense and Sensibility", "Persuasion") > _sim(v, "Sense and Sensibility", "Twister")
