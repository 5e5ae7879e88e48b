"""A seeded synthetic dataset whose latent item categories drive sequences *and* text.

Tests need data where the truth is known: each item belongs to a latent category, each
user prefers one to three categories, and a user mostly walks forward through a
category's item ordering (so a sequential model has something to learn), with Zipf-like
popularity inside each category (a long tail). Item titles, brands and category paths
are drawn from category-specific vocabularies, so text predicts the category and an
LLM embedding of the text carries the signal an ID model has to learn from sequences.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from pipeline.data.config import DataConfig
from pipeline.data.raw import RawData
from pipeline.errors import InputError

DEFAULTS: dict[str, float] = {
    "users": 200,
    "items": 500,
    "categories": 8,
    "min_len": 5,
    "max_len": 30,
    "seed": 0,
    "p_next": 0.75,  # chance the next event is the next item of the current category
    "zipf": 1.1,  # popularity exponent within a category
    # 1: every user's walk generated at once (numpy over users, step by step) and item text
    # built column-wise: the same model of data, other random draws, seconds instead of
    # hours at 10^5–10^6 items × 10^5 users (bench/scale.py). 0: one user at a time.
    "fast": 0,
}
_INT_ARGS = ("users", "items", "categories", "min_len", "max_len", "seed", "fast")
T0 = 1_600_000_000  # timestamps start here (2020-09-13), one user spread over months

# (category name, adjectives, nouns, brands): real words, so text encoders see meaning.
THEMES: list[tuple[str, list[str], list[str], list[str]]] = [
    (
        "Lab Equipment",
        ["quantum", "borosilicate", "graduated", "sterile", "volumetric"],
        ["flask", "beaker", "pipette", "centrifuge", "burette", "petri dish"],
        ["Labtronix", "Quantix", "SciGlass"],
    ),
    (
        "Garden",
        ["organic", "weatherproof", "expandable", "rustic", "terracotta"],
        ["garden hose", "trowel", "planter", "pruning shears", "watering can", "compost bin"],
        ["GreenThumb", "Bloomfield", "Yardcraft"],
    ),
    (
        "Kitchen",
        ["nonstick", "cast iron", "stainless", "ceramic", "bamboo"],
        ["skillet", "saucepan", "whisk", "cutting board", "colander", "chef knife"],
        ["Cookwell", "Panora", "Chefmate"],
    ),
    (
        "Pet Supplies",
        ["chewable", "orthopedic", "catnip", "squeaky", "grain-free"],
        ["dog leash", "cat tree", "pet bed", "litter box", "chew toy", "bird feeder"],
        ["Pawsome", "Furrytail", "PetNest"],
    ),
    (
        "Camping",
        ["waterproof", "ultralight", "insulated", "rugged", "collapsible"],
        ["tent", "sleeping bag", "headlamp", "camp stove", "trekking pole", "hammock"],
        ["Trailpeak", "Summitgear", "Wildcamp"],
    ),
    (
        "Office",
        ["ergonomic", "refillable", "recycled", "executive", "archival"],
        ["stapler", "desk organizer", "fountain pen", "paper shredder", "label maker", "binder"],
        ["Deskly", "Paperworks", "Officio"],
    ),
    (
        "Musical Instruments",
        ["acoustic", "vintage", "studio", "chromatic", "fretted"],
        ["guitar strings", "drum sticks", "ukulele", "metronome", "harmonica", "violin bow"],
        ["Soundcraft", "Melodia", "Tonewood"],
    ),
    (
        "Beauty",
        ["hydrating", "fragrance-free", "matte", "botanical", "anti-aging"],
        ["face serum", "lipstick", "moisturizer", "nail polish", "eyeliner", "sunscreen"],
        ["Glowlab", "Pureskin", "Velvetine"],
    ),
    (
        "Automotive",
        ["heavy-duty", "synthetic", "all-season", "chrome", "diagnostic"],
        ["motor oil", "tire gauge", "wiper blade", "spark plug", "brake pad", "jump starter"],
        ["Torqueline", "Autopro", "Roadmaster"],
    ),
    (
        "Toys",
        ["plush", "wooden", "educational", "remote control", "glow-in-the-dark"],
        ["teddy bear", "jigsaw puzzle", "toy train", "building blocks", "kite", "doll house"],
        ["Playtopia", "Kiddo", "Toyforge"],
    ),
    (
        "Fitness",
        ["non-slip", "weighted", "foam", "interval", "high-density"],
        ["yoga mat", "dumbbell", "jump rope", "kettlebell", "foam roller", "pull-up bar"],
        ["Flexcore", "Ironfit", "Pulsegym"],
    ),
    (
        "Electronics",
        ["bluetooth", "usb-c", "noise-cancelling", "rechargeable", "smart"],
        ["headphones", "power bank", "charging cable", "speaker", "smartwatch", "webcam"],
        ["Voltix", "Circuitry", "Zentek"],
    ),
]
GENERIC = ["", "", "Pro", "Set", "Classic", "Deluxe", "Mini", "XL", "Pack of 2"]
_SYLLABLES = ["zor", "vex", "bli", "tam", "kor", "lun", "pra", "dex", "mol", "fin", "gar", "qui"]


@dataclass
class SyntheticRaw(RawData):
    """RawData plus the latent truth: raw item id → category index."""

    latent: dict[str, int] = field(default_factory=dict)


def load(cfg: DataConfig, cache_dir: Path) -> RawData:
    raw = make_synthetic(**cfg.synthetic)
    raw.name = cfg.dataset_name
    return raw


def item_categories(raw: RawData) -> dict[str, int]:
    """Raw item id → latent category of a RawData made by this module."""
    if not isinstance(raw, SyntheticRaw):
        raise InputError(f"{raw.source}: item categories are known for synthetic data only")
    return dict(raw.latent)


def make_synthetic(**kwargs: float) -> SyntheticRaw:
    """Generate the dataset; the same arguments (seed included) give identical output."""
    args = _arguments(kwargs)
    rng = np.random.default_rng(int(args["seed"]))
    n_items, n_cats = int(args["items"]), int(args["categories"])
    cat_of = np.arange(n_items) % n_cats
    rng.shuffle(cat_of)
    # order[c]: the walking order of category c's items; cdf[c]: its Zipf popularity.
    order = [rng.permutation(np.flatnonzero(cat_of == c)) for c in range(n_cats)]
    cdf = [np.cumsum(_zipf(len(o), args["zipf"])) for o in order]
    if args["fast"]:
        users, items, times = _all_events(order, args, rng)
    else:
        rows = [_user_events(u, order, cdf, args, rng) for u in range(int(args["users"]))]
        users, items, times = (np.concatenate(col) for col in zip(*rows, strict=True))
    interactions = pl.DataFrame(
        {
            "user": (users + 1).astype(str),
            "item": (items + 1).astype(str),
            "timestamp": times,
            "rating": None,
        },
        schema={"user": pl.String, "item": pl.String, "timestamp": pl.Int64, "rating": pl.Float64},
    )
    text = _item_text_columns(cat_of, rng) if args["fast"] else _item_text(cat_of, rng)
    return SyntheticRaw(
        name="synthetic",
        source="synthetic",
        interactions=interactions,
        items=text,
        latent={str(i + 1): int(c) for i, c in enumerate(cat_of)},
    )


def _arguments(kwargs: dict[str, float]) -> dict[str, float]:
    unknown = sorted(set(kwargs) - set(DEFAULTS))
    if unknown:
        raise InputError(f"synthetic: unknown argument(s) {unknown}; known: {sorted(DEFAULTS)}")
    args = {**DEFAULTS, **kwargs}
    for k in _INT_ARGS:
        if float(args[k]) != int(args[k]) or args[k] < (0 if k in ("seed", "fast") else 1):
            kind = "a non-negative" if k in ("seed", "fast") else "a positive"
            raise InputError(f"synthetic: {k}={args[k]} must be {kind} integer")
    if args["min_len"] > args["max_len"]:
        raise InputError(f"synthetic: min_len={args['min_len']} > max_len={args['max_len']}")
    if args["categories"] > args["items"]:
        raise InputError(f"synthetic: more categories ({args['categories']}) than items")
    if not 0 <= args["p_next"] <= 1:
        raise InputError(f"synthetic: p_next={args['p_next']} must be in [0, 1]")
    return args


def _zipf(n: int, exponent: float) -> np.ndarray:
    """Zipf weights along the walking order: walks enter at the popular head of a
    category and carry users forward into its tail, which gives a long tail overall."""
    w = 1.0 / np.arange(1, n + 1) ** exponent
    return w / w.sum()


def _user_events(
    u: int,
    order: list[np.ndarray],
    cdf: list[np.ndarray],
    args: dict[str, float],
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One user's events: a walk along preferred categories' orderings, no repeats."""
    n_cats = len(order)
    k = min(n_cats, int(rng.choice([1, 2, 3], p=[0.45, 0.45, 0.10])))
    prefs = rng.choice(n_cats, size=k, replace=False)
    mix = rng.dirichlet(np.full(k, 2.0))
    lo, hi = int(args["min_len"]), int(args["max_len"])
    length = min(hi, lo + int(rng.exponential((hi - lo) / 3 + 1e-9)))
    seen: set[int] = set()
    seq: list[int] = []
    cat, pos = -1, 0
    for _ in range(length * 3):  # bounded: a tiny catalogue may run out of unseen items
        if len(seq) == length:
            break
        r = rng.random()
        if cat >= 0 and r < args["p_next"]:
            pos = (pos + 1 + int(rng.random() < 0.3)) % len(order[cat])  # next, or skip one
        else:
            cat = int(prefs[rng.choice(k, p=mix)]) if r < 0.95 else int(rng.integers(n_cats))
            pos = int(np.searchsorted(cdf[cat], rng.random() * cdf[cat][-1]))
        item = int(order[cat][pos])
        if item not in seen:
            seen.add(item)
            seq.append(item)
    gaps = rng.integers(600, 3 * 86_400, size=len(seq))
    times = T0 + int(rng.integers(0, 180 * 86_400)) + np.cumsum(gaps)
    return np.full(len(seq), u), np.asarray(seq, dtype=np.int64), times.astype(np.int64)


def _all_events(order: list[np.ndarray], args: dict[str, float],
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`_user_events`' walk for all users at once: one vectorised step over every user per
    position. Preferences may repeat a category (fewer distinct ones), and a walk that
    revisits an item skips it (first visits kept), as the per-user walk does."""
    n_users, n_cats = int(args["users"]), len(order)
    lo, hi = int(args["min_len"]), int(args["max_len"])
    sizes = np.array([len(o) for o in order])  # [C]
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])  # [C] start of category c in `flat`
    flat = np.concatenate(order)  # [N] items, category by category in walking order
    # Zipf entry points over the largest category, clipped into smaller ones (sizes differ by 1)
    entry_cdf = np.cumsum(_zipf(int(sizes.max()), args["zipf"]))
    k = np.minimum(n_cats, rng.choice([1, 2, 3], p=[0.45, 0.45, 0.10], size=n_users))  # [U]
    prefs = rng.integers(n_cats, size=(n_users, 3))  # [U, 3]
    mix = rng.dirichlet(np.full(3, 2.0), size=n_users) * (np.arange(3)[None] < k[:, None])
    mix_cdf = np.cumsum(mix / mix.sum(1, keepdims=True), axis=1)  # [U, 3]
    length = np.minimum(hi, lo + rng.exponential((hi - lo) / 3 + 1e-9, size=n_users).astype(int))
    steps = int(length.max()) + (hi - lo) // 2 + 2  # spare steps for the revisits dropped
    cat = np.full(n_users, -1)
    pos = np.zeros(n_users, dtype=np.int64)
    walk = np.empty((n_users, steps), dtype=np.int64)  # [U, S] item indices
    for t in range(steps):
        r = rng.random(n_users)
        cont = (cat >= 0) & (r < args["p_next"])
        skip = 1 + (rng.random(n_users) < 0.3)
        pos = np.where(cont, (pos + skip) % sizes[np.maximum(cat, 0)], pos)
        pick = np.minimum((rng.random(n_users)[:, None] > mix_cdf).sum(1), 2)  # [U] in 0..2
        new_cat = np.where(r < 0.95, prefs[np.arange(n_users), pick], rng.integers(n_cats, size=n_users))
        entry = np.searchsorted(entry_cdf, rng.random(n_users) * entry_cdf[-1])
        cat = np.where(cont, cat, new_cat)
        pos = np.where(cont, pos, np.minimum(entry, sizes[cat] - 1))
        walk[:, t] = flat[offsets[cat] + pos]
    events = pl.DataFrame({"user": np.repeat(np.arange(n_users), steps), "item": walk.ravel(),
                           "length": np.repeat(length, steps)})
    events = (events.unique(["user", "item"], keep="first", maintain_order=True)
              .filter(pl.int_range(pl.len()).over("user") < pl.col("length")))
    users, items = events["user"].to_numpy(), events["item"].to_numpy()
    gaps = rng.integers(600, 3 * 86_400, size=len(users))
    start = T0 + rng.integers(0, 180 * 86_400, size=n_users)
    first = np.r_[True, users[1:] != users[:-1]]  # each user's first event
    run = np.cumsum(gaps)
    base = np.maximum.accumulate(np.where(first, run - gaps, 0))  # cumsum before the user
    times = start[users] + run - base
    return users, items, times.astype(np.int64)


def _item_text_columns(cat_of: np.ndarray, rng: np.random.Generator) -> pl.DataFrame:
    """`_item_text` built column by column (numpy draws, polars string concatenation)."""
    n_cats = int(cat_of.max()) + 1
    themes = [_theme(c) for c in range(n_cats)]
    n = len(cat_of)

    def word(lists: list[list[str]], of: np.ndarray) -> np.ndarray:
        """One word per item from its category's list (each list padded to the longest)."""
        width = max(len(w) for w in lists)
        table = np.array([[w[i % len(w)] for i in range(width)] for w in lists], dtype=object)
        sizes = np.array([len(w) for w in lists])
        return table[of, (rng.random(n) * sizes[of]).astype(int)]

    adj = word([t[1] for t in themes], cat_of)
    noun = word([t[2] for t in themes], cat_of)
    owner = np.where(rng.random(n) < 0.05, rng.integers(n_cats, size=n), cat_of)
    brand = word([t[3] for t in themes], owner)
    extra = np.array(GENERIC, dtype=object)[rng.integers(len(GENERIC), size=n)]
    model = (pl.Series(np.char.mod("%c", 65 + rng.integers(26, size=n)))
             + pl.Series(rng.integers(100, 1000, size=n)).cast(pl.String))
    cols = pl.DataFrame({"brand": brand, "adj": adj, "noun": noun, "extra": extra, "model": model},
                        schema={c: pl.String for c in ("brand", "adj", "noun", "extra", "model")})
    names = np.array([t[0] for t in themes], dtype=object)[cat_of]
    return cols.select(
        item=pl.int_range(1, n + 1).cast(pl.String),
        title=pl.concat_str([pl.col("brand"), pl.col("adj"), pl.col("noun"),
                             pl.when(pl.col("extra") != "").then(pl.col("extra")),
                             pl.col("model")], separator=" ", ignore_nulls=True),
        brand=pl.col("brand"),
        categories=pl.concat_str([pl.lit("Shop, "), pl.Series(names, dtype=pl.String),
                                  pl.lit(", "), pl.col("noun").str.to_titlecase()]),
    )


def _item_text(cat_of: np.ndarray, rng: np.random.Generator) -> pl.DataFrame:
    """title, brand, categories per item from its category's vocabulary (5% foreign brands)."""
    themes = [_theme(c) for c in range(int(cat_of.max()) + 1)]
    titles, brands, paths = [], [], []
    for c in cat_of:
        name, adjs, nouns, _ = themes[c]
        adj, noun = adjs[rng.integers(len(adjs))], nouns[rng.integers(len(nouns))]
        owner = themes[rng.integers(len(themes))] if rng.random() < 0.05 else themes[c]
        brand = owner[3][rng.integers(len(owner[3]))]
        extra = GENERIC[rng.integers(len(GENERIC))]
        model = f"{chr(65 + int(rng.integers(26)))}{int(rng.integers(100, 1000))}"
        titles.append(" ".join(w for w in (brand, adj, noun, extra, model) if w))
        brands.append(brand)
        paths.append(f"Shop, {name}, {noun.title()}")
    return pl.DataFrame(
        {
            "item": [str(i + 1) for i in range(len(cat_of))],
            "title": titles,
            "brand": brands,
            "categories": paths,
        }
    )


def _theme(c: int) -> tuple[str, list[str], list[str], list[str]]:
    """The c-th vocabulary; beyond the named themes, pseudo-words fixed by c alone."""
    if c < len(THEMES):
        return THEMES[c]
    rng = np.random.default_rng(10_000 + c)

    def word(n: int) -> str:
        return "".join(rng.choice(_SYLLABLES, size=n))

    return (
        f"Category {word(2).title()}",
        [word(3) for _ in range(5)],
        [word(3) for _ in range(6)],
        [word(2).title() for _ in range(3)],
    )
