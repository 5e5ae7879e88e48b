"""`items/fused`: the concatenation's scaling and the config's refusals."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from pipeline.methods.fused.config import FusedConfig
from pipeline.methods.fused.write import fuse_tables


def test_each_part_is_centred_to_the_same_total_variance():
    rng = np.random.default_rng(0)
    narrow = rng.normal(3.0, 0.01, size=(50, 4))  # offset and tiny: would vanish unscaled
    wide = rng.normal(0.0, 10.0, size=(50, 40))
    fused = fuse_tables([narrow, wide])
    assert fused.shape == (50, 44) and fused.dtype == np.float32
    assert np.allclose(fused.mean(0), 0, atol=1e-5)
    assert np.allclose((fused[:, :4] ** 2).sum(), 50, rtol=1e-4)  # ‖part‖_F² = N, each part
    assert np.allclose((fused[:, 4:] ** 2).sum(), 50, rtol=1e-4)
    # directions within a part are kept: the narrow part is its centred self, rescaled
    c = narrow - narrow.mean(0)
    assert np.allclose(fused[:, :4], c * np.sqrt(50) / np.linalg.norm(c), atol=1e-5)
    with pytest.raises(ValueError, match="different item counts"):
        fuse_tables([narrow, wide[:-1]])
    with pytest.raises(ValueError, match="constant"):
        fuse_tables([np.ones((50, 3)), wide])


def test_config_takes_two_or_more_other_item_kinds():
    assert FusedConfig().parts == ["items/llmemb-rat", "items/llmemb-scft"]
    for parts, match in ((["items/llmemb-rat"], "at least 2"),
                         (["items/a", "users/b"], "users/b"),
                         (["items/a", "items/fused"], "items/fused"),
                         (["items/a", "items/a"], "repeat")):
        with pytest.raises(ValidationError, match=match):
            FusedConfig(parts=parts)


def test_a_missing_part_is_refused_before_any_work(synthetic_dataset, tmp_path):
    from embeddings_store import EmbeddingStore
    from pipeline.errors import InputError
    from pipeline.methods.fused.write import check_parts

    EmbeddingStore(tmp_path / "store")
    cfg = FusedConfig(parts=["items/llmemb-rat", "items/tslrec"])
    check_parts(synthetic_dataset, tmp_path / "store", cfg, {"items/llmemb-rat", "items/tslrec"})
    with pytest.raises(InputError, match="part items/tslrec is not in"):
        check_parts(synthetic_dataset, tmp_path / "store", cfg, {"items/llmemb-rat"})


def test_a_part_read_from_the_store_pins_the_cache_key(synthetic_dataset, tmp_path):
    import numpy as np

    from embeddings_store import EmbeddingStore, ManifestInput, Producer
    from pipeline.runs import generator_key

    store = EmbeddingStore(tmp_path / "store")
    n = synthetic_dataset.n_items
    ids = np.arange(1, n + 1)

    def write_tslrec(seed: int) -> None:
        vectors = np.random.default_rng(seed).normal(size=(n, 8)).astype(np.float32)
        store.write(synthetic_dataset.name, "items/tslrec", ids, vectors,
                    ManifestInput(dataset_fingerprint=synthetic_dataset.fingerprint,
                                  producer=Producer(generator="test")))

    over = {"parts": ["items/llmemb-rat", "items/tslrec"]}
    upstream = {"items/llmemb-rat": "x/items/llmemb-rat@v1"}
    path, root = str(synthetic_dataset.path), str(tmp_path / "store")
    write_tslrec(0)
    first = generator_key("fused", path, over, None, upstream, root)
    assert generator_key("fused", path, over, None, upstream, root) == first
    write_tslrec(1)  # a new version of a part outside the flow: the fused table is stale
    assert generator_key("fused", path, over, None, upstream, root) != first
