"""Leave-one-out split, fixed negatives, and leakage."""

from __future__ import annotations

import numpy as np

from pipeline.split import leave_one_out, sample_negatives


def test_leave_one_out_by_time(synthetic_dataset, synthetic_split):
    for seq, train, v, t in zip(synthetic_dataset.sequences, synthetic_split.train,
                                synthetic_split.valid, synthetic_split.test, strict=True):
        assert np.array_equal(train, seq[:-2]) and v == seq[-2] and t == seq[-1]
    test_in = synthetic_split.inputs("test")
    assert all(np.array_equal(x[:-1], tr) and x[-1] == v for x, tr, v in
               zip(test_in, synthetic_split.train, synthetic_split.valid, strict=True))


def test_no_valid_or_test_item_in_training_sequences(synthetic_split):
    for train, v, t in zip(synthetic_split.train, synthetic_split.valid, synthetic_split.test,
                           strict=True):
        assert v not in train and t not in train


def test_negatives_outside_history_fixed_and_saved(synthetic_dataset, synthetic_split):
    negs = synthetic_split.negatives
    assert negs.shape == (synthetic_dataset.n_users, 100)
    for seq, row in zip(synthetic_dataset.sequences, negs, strict=True):
        assert not np.isin(row, seq).any()
        assert len(np.unique(row)) == 100 and row.min() >= 1
    assert any((synthetic_dataset.path / "split").glob("negatives-n100-seed0.parquet"))
    again = leave_one_out(synthetic_dataset)
    assert np.array_equal(again.negatives, negs)
    other = sample_negatives(synthetic_dataset.sequences, synthetic_dataset.n_items, 100, seed=1)
    assert not np.array_equal(other, negs)


def test_the_number_of_negatives_is_a_setting_bounded_by_the_catalogue(synthetic_dataset):
    import pytest

    from pipeline.config import load_train_config
    from pipeline.errors import InputError
    from pipeline.split import check_negatives, fewest_unseen

    seqs, n = synthetic_dataset.sequences, synthetic_dataset.n_items
    user, free = fewest_unseen(synthetic_dataset)
    assert free == n - len(np.unique(seqs[user - 1]))
    assert free == min(n - len(np.unique(s)) for s in seqs)
    check_negatives(synthetic_dataset, [free])  # exactly enough: fine
    with pytest.raises(InputError, match=f"user {user} has only {free} items.*s{free + 1}"):
        check_negatives(synthetic_dataset, [free + 1])
    with pytest.raises(InputError, match=f"--set n_negatives={free} or fewer"):
        sample_negatives(seqs, n, free + 1, seed=0)
    few = leave_one_out(synthetic_dataset, n_neg=7)
    assert few.negatives.shape == (synthetic_dataset.n_users, 7)
    # the default keeps every earlier config hash; another count is another run
    base = load_train_config("sasrec")
    assert base.model_copy(update={"n_negatives": 100}).config_hash() == base.config_hash()
    assert load_train_config("sasrec", {"n_negatives": 7}).config_hash() != base.config_hash()
    assert load_train_config("sasrec").config_hash() == "3b370eaf07"
