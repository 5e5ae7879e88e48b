"""RASD: neighbour retrieval (self excluded, ids mapped), detached targets, user ids in batches."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from llmesr_helpers import TINY, write_users

from embeddings_store import EmbeddingStore
from models.losses import RASDLoss
from pipeline.batches import pad_left
from pipeline.config import load_train_config
from pipeline.errors import InputError
from pipeline.evaluate import EvalConfig, evaluate
from pipeline.methods.llmesr.distill import neighbours_for_run, retrieve_neighbours
from pipeline.methods.llmesr.train import build_llmesr
from pipeline.train import model_scorer, train_srs


def _pairs(n_users: int, seed: int = 0) -> np.ndarray:
    """partner[u-1] = the one user whose vector is nearly user u's (users paired at random)."""
    perm = np.random.default_rng(seed).permutation(n_users) + 1
    partner = np.empty(n_users, dtype=np.int64)
    partner[perm[0::2] - 1], partner[perm[1::2] - 1] = perm[1::2], perm[0::2]
    return partner


def _paired_vectors(n_users: int, partner: np.ndarray, seed: int = 0) -> np.ndarray:
    """[U, 32] row u-1 = user u: a pair shares a random base vector, plus small noise."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(n_users, 32))
    lead = np.minimum(np.arange(1, n_users + 1), partner)  # the pair's smaller id names its base
    return (base[lead - 1] + 0.01 * rng.normal(size=(n_users, 32))).astype(np.float32)


@pytest.fixture
def paired_store(tmp_path, synthetic_dataset):
    """A store whose users/test rows are in shuffled id order; returns (store, ref, partner)."""
    u = synthetic_dataset.n_users
    partner = _pairs(u)
    vectors = _paired_vectors(u, partner)
    order = np.random.default_rng(1).permutation(u)  # row r holds user order[r] + 1
    store = EmbeddingStore(tmp_path / "store")
    ref = write_users(store, synthetic_dataset, vectors[order], order + 1)
    return store, str(ref), partner


def test_neighbours_exclude_self_and_map_back_to_user_ids(paired_store, synthetic_dataset):
    store, ref, partner = paired_store
    nb = retrieve_neighbours(store, ref, synthetic_dataset, k=100)
    u = synthetic_dataset.n_users
    assert nb.shape == (u, 100) and nb.min() >= 1 and nb.max() <= u
    users = np.arange(1, u + 1)
    assert not (nb == users[:, None]).any()  # never the user itself
    assert (nb[:, 0] == partner).all()  # the known nearest user comes first, by id
    assert all(len(set(row)) == 100 for row in nb)


def test_neighbours_do_not_depend_on_store_row_order(paired_store, synthetic_dataset, tmp_path):
    store, ref, partner = paired_store
    u = synthetic_dataset.n_users
    in_order = EmbeddingStore(tmp_path / "ordered")
    ref2 = write_users(in_order, synthetic_dataset, _paired_vectors(u, partner), np.arange(1, u + 1))
    a = retrieve_neighbours(store, ref, synthetic_dataset, k=10)
    b = retrieve_neighbours(in_order, str(ref2), synthetic_dataset, k=10)
    assert (a[:, 0] == b[:, 0]).all() and (a == b).mean() > 0.95  # only float near-ties may swap


def test_neighbours_refuse_leaky_or_foreign_user_vectors(synthetic_dataset, tmp_path):
    store = EmbeddingStore(tmp_path / "store")
    u = synthetic_dataset.n_users
    vecs = np.random.default_rng(0).normal(size=(u, 8)).astype(np.float32)
    leaky = write_users(store, synthetic_dataset, vecs, np.arange(1, u + 1), history="full",
                        kind="users/leaky")
    with pytest.raises(InputError, match="training-period"):
        retrieve_neighbours(store, str(leaky), synthetic_dataset, k=5)
    partial = write_users(store, synthetic_dataset, vecs[:-1], np.arange(1, u), kind="users/partial")
    with pytest.raises(InputError, match="cover users"):
        retrieve_neighbours(store, str(partial), synthetic_dataset, k=5)


def test_neighbours_are_retrieved_once_per_run(paired_store, synthetic_dataset, tmp_path):
    store, ref, _ = paired_store
    first = neighbours_for_run(store, ref, synthetic_dataset, 20, tmp_path / "run")
    saved = tmp_path / "run" / "neighbours.npy"
    stamp = saved.stat().st_mtime_ns
    again = neighbours_for_run(store, ref, synthetic_dataset, 20, tmp_path / "run")
    assert saved.stat().st_mtime_ns == stamp and np.array_equal(first, again)
    assert first.shape == (synthetic_dataset.n_users, 20) and first.dtype == np.int64


def _model(item_vectors, backbone="sasrec"):
    torch.manual_seed(0)
    return build_llmesr(load_train_config(backbone, TINY), item_vectors).eval()


def test_target_is_the_detached_mean_of_the_right_neighbours(paired_store, synthetic_dataset,
                                                             synthetic_split, item_vectors):
    store, ref, partner = paired_store
    nb = retrieve_neighbours(store, ref, synthetic_dataset, k=10)
    model = _model(item_vectors)
    rasd = RASDLoss(synthetic_split.train, nb, n=3, weight=0.1, max_len=20)
    users = torch.tensor([5, 17, 150])
    target = rasd.targets(model, users)
    assert not target.requires_grad and target.grad_fn is None
    # By hand: the model on each neighbour's training input (its train items but the last).
    for row, u in enumerate(users.tolist()):
        seqs = [synthetic_split.train[v - 1][:-1] for v in nb[u - 1, :3]]
        assert nb[u - 1, 0] == partner[u - 1]
        expected = model(pad_left(seqs, 20)).mean(0)
        assert torch.allclose(target[row], expected, atol=1e-5)


def test_cached_teacher_reads_eval_mode_neighbours_and_refreshes_per_epoch(
        paired_store, synthetic_dataset, synthetic_split, item_vectors):
    store, ref, _ = paired_store
    nb = retrieve_neighbours(store, ref, synthetic_dataset, k=10)
    model = _model(item_vectors).train()  # training mode: the cache is still eval-mode
    rasd = RASDLoss(synthetic_split.train, nb, n=3, weight=0.1, max_len=20, teacher="cached",
                    refresh_every=2)
    users = torch.tensor([5, 17, 150])
    exact = RASDLoss(synthetic_split.train, nb, n=3, weight=0.1, max_len=20)
    target = rasd.targets(model, users)
    assert model.training  # restored after the cache pass
    assert torch.allclose(target, exact.targets(model.eval(), users), atol=1e-5)
    model.train()
    with torch.no_grad():
        next(p for p in model.parameters() if p.requires_grad).add_(0.5)
    assert torch.equal(rasd.targets(model, users), target)  # stale until the refresh
    rasd.new_epoch(1, 0.0)
    assert torch.equal(rasd.targets(model, users), target)  # refresh_every=2
    rasd.new_epoch(2, 0.0)
    assert not torch.allclose(rasd.targets(model, users), target)


def test_running_teacher_writes_each_steps_students_into_the_cache(
        paired_store, synthetic_dataset, synthetic_split, item_vectors):
    store, ref, _ = paired_store
    nb = retrieve_neighbours(store, ref, synthetic_dataset, k=10)
    model = _model(item_vectors).eval()  # eval: the student equals a fresh encoding
    rasd = RASDLoss(synthetic_split.train, nb, n=3, weight=0.1, max_len=20, teacher="running")
    users = torch.tensor([5, 17, 150])
    first = rasd.targets(model, users)  # fills the cache once
    assert torch.allclose(first, RASDLoss(synthetic_split.train, nb, n=3, weight=0.1,
                                          max_len=20).targets(model, users), atol=1e-5)
    with torch.no_grad():
        next(p for p in model.parameters() if p.requires_grad).add_(0.5)
    before = rasd.cache.clone()
    rasd(model, {"user": users})  # the step's own rows, and only they, are rewritten
    changed = (rasd.cache != before).any(1).nonzero().flatten() + 1
    assert changed.tolist() == [5, 17, 150]
    assert torch.allclose(rasd.cache[users - 1], model(rasd.sequences(users)), atol=1e-5)
    rasd.new_epoch(1, 0.0)
    assert rasd.cache is not None  # never dropped: the training passes keep it fresh


def test_validation_teacher_reads_the_vectors_validation_computed(
        paired_store, synthetic_dataset, synthetic_split, item_vectors):
    store, ref, _ = paired_store
    nb = retrieve_neighbours(store, ref, synthetic_dataset, k=10)
    model = _model(item_vectors).train()
    rasd = RASDLoss(synthetic_split.train, nb, n=3, weight=0.1, max_len=20, teacher="validation")
    users = torch.tensor([5, 17, 150])

    def by_hand() -> torch.Tensor:  # eval mode, each neighbour's whole training history
        with torch.no_grad():
            return torch.stack([model.eval()(pad_left(
                [synthetic_split.train[v - 1] for v in nb[u - 1, :3]], 20)).mean(0) for u in users])

    first = rasd.targets(model, users)  # the one fill before any validation
    assert model.training and torch.allclose(first, by_hand(), atol=1e-5)
    with torch.no_grad():
        next(p for p in model.parameters() if p.requires_grad).add_(0.5)
    model.train()
    rasd.new_epoch(1, 0.0)
    assert torch.equal(rasd.targets(model, users), first)  # no pass of its own
    evaluate(model_scorer(model.eval(), tap=rasd.observe), synthetic_split, "valid", EvalConfig())
    assert torch.allclose(rasd.targets(model, users), by_hand(), atol=1e-5)
    assert not torch.allclose(by_hand(), first, atol=1e-3)
    with pytest.raises(ValueError, match="user_sample"):
        load_train_config("sasrec", {"llmesr.teacher": "validation", "eval.user_sample": 10})


def test_distillation_gradient_reaches_only_the_student(paired_store, synthetic_dataset,
                                                        synthetic_split, item_vectors):
    store, ref, _ = paired_store
    model = _model(item_vectors)
    rasd = RASDLoss(synthetic_split.train, retrieve_neighbours(store, ref, synthetic_dataset, 10),
                    n=10, weight=0.1, max_len=20)
    users = torch.tensor([1, 2, 3, 100])
    params = [p for p in model.parameters() if p.requires_grad]
    grads = torch.autograd.grad(rasd(model, {"user": users}), params, allow_unused=True)
    # The same loss against a constant target: equal gradients iff none flowed into the teacher.
    student = model(rasd.sequences(users))
    reference = 0.1 * F.mse_loss(student, rasd.targets(model, users))
    ref_grads = torch.autograd.grad(reference, params, allow_unused=True)
    nonzero = 0
    for g, r in zip(grads, ref_grads, strict=True):
        assert (g is None) == (r is None)
        if g is not None:
            assert torch.allclose(g, r, atol=1e-7)
            nonzero += int(g.abs().sum() > 0)
    assert nonzero > 5


@pytest.mark.parametrize("backbone", ["sasrec", "bert4rec"])
def test_training_batches_name_the_users_whose_rows_they_hold(synthetic_split, tmp_path, backbone):
    train = synthetic_split.train
    checked: list[int] = []

    def spy(model, batch):
        users = batch["user"].tolist()
        seqs = pad_left([train[u - 1] for u in users], batch["target"].shape[1] + 1)
        if model.objective == "next":  # input = train[:-1], target = train[1:]
            assert torch.equal(batch["target"], seqs[:, 1:] * (batch["target"] > 0))
            assert torch.equal(batch["input"], seqs[:, :-1] * (batch["input"] > 0))
        else:  # cloze: the row, masked targets put back, is a window of the user's items
            hit = batch["target"] > 0  # (the whole history, or a prefix: cloze_prefixes)
            rows = torch.where(hit, batch["target"], batch["input"])
            for row, u in zip(rows, users, strict=True):
                r, s = row[row > 0].numpy(), train[u - 1]
                assert any(np.array_equal(s[k - len(r):k], r) for k in range(len(r), len(s) + 1))
        checked.extend(users)
        return torch.zeros(())

    cfg = load_train_config(backbone, {**TINY, "epochs": 1})
    train_srs(synthetic_split, cfg, tmp_path, progress=False, aux_loss=spy)
    trainable = {u + 1 for u, s in enumerate(train) if len(s) >= 2}
    assert set(checked) == trainable
    assert len(checked) == len(trainable) * (2 if backbone == "bert4rec" else 1)


def test_student_reuses_the_recommendation_pass_of_a_next_item_batch(synthetic_split, item_vectors):
    from pipeline.batches import next_item_batch

    torch.manual_seed(0)
    model = build_llmesr(load_train_config("sasrec", {**TINY, "model.dropout": 0.0}), item_vectors)
    users = np.array([3, 40, 41, 199])
    batch = next_item_batch([synthetic_split.train[u - 1] for u in users], 20, model.n_items,
                            torch.Generator().manual_seed(0), False, users=users)
    model.train()
    model.loss(batch)
    kept = model.take_user()
    rasd = RASDLoss(synthetic_split.train, np.ones((len(synthetic_split.train), 1), np.int64),
                    n=1, weight=1.0, max_len=20)
    assert kept is not None and kept.requires_grad
    assert torch.allclose(kept, model(rasd.sequences(torch.from_numpy(users))), atol=1e-5)
    assert model.take_user() is None  # handed out once
    model.eval()
    model.loss(batch)
    assert model.take_user() is None  # never kept outside training
