"""Item and user texts for LLM encoders (LLMEmb's "key is value; …", LLM-ESR's sentences).

Values are cleaned so the attribute separator stays unambiguous: LLMEmb's SCFT splits an
item text at the separator to drop and shuffle attributes (../shared/methods/METHODS.md
§4.2-4.3). User texts come from the titles of the user's *training* items only; callers
pass `Split.train`, never a full sequence, so valid/test items cannot leak into a prompt.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from typing import Literal

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from pipeline.errors import InputError

ID_COLUMNS = ("item_id", "raw_id")
# Values that carry no information and would only teach the encoder the word "unknown".
NULL_LIKE = frozenset({"", "nan", "none", "null", "unknown", "n/a", "na"})
# Block tags separate words, inline ones (<b>, <i>, <span>) may sit inside a word.
_BLOCK_TAG = re.compile(r"</?(?:p|br|div|li|ul|ol|tr|td|th|h[1-6]|table)\b[^>]{0,200}>", re.I)
_TAG = re.compile(r"<[^>]{0,200}>")
_SPACE = re.compile(r"\s+")

DEFAULT_SENTENCES: dict[str, str] = {
    "title": "The {item_type} is called {value}.",
    "name": "The {item_type} is called {value}.",
    "year": "It came out in {value}.",
    "genres": "Its genres are {value}.",
    "brand": "It is made by {value}.",
    "categories": "It is listed under {value}.",
    "category": "It is listed under {value}.",
    "price": "It costs {value}.",
    "description": "{value}",
}

Pairs = list[tuple[str, str]]  # (display key, cleaned value) of one item, in config order


class PromptConfig(BaseModel):
    """How items and users become text. Every wording here is ours, not the papers'."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    style: Literal["kv", "sentences"] = "kv"  # LLMEmb key-value list | LLM-ESR-like sentences
    attributes: tuple[str, ...] | None = None  # columns, in order; None = all text columns
    labels: dict[str, str] = {}  # column -> key shown; default: the column, "_" -> " "
    item_type: str = "item"  # "movie", "product", … used by templates
    instruction: str = "A {item_type} with these attributes:"  # first line; "" for none
    kv_template: str = "{key} is {value}"
    separator: str = "; "
    separator_replacement: str = ","  # replaces the separator's mark inside values
    sentence_templates: dict[str, str] = DEFAULT_SENTENCES
    sentence_default: str = "Its {key} is {value}."
    max_value_chars: int = Field(200, ge=8)
    max_item_chars: int = Field(1000, ge=16)
    ids_as_text: bool = False  # only when asked: a text-less dataset embeds "item 123"
    id_template: str = "{item_type} {item_id}"
    user_attribute: str = "title"  # falls back to the first attribute when absent
    user_template: str = (
        "Someone chose these {item_type}s, oldest first: {history}. What does this person enjoy?"
    )
    user_separator: str = "; "
    user_max_items: int = Field(50, ge=1)  # the most recent training items kept
    user_max_chars: int = Field(2000, ge=16)  # oldest titles dropped first beyond this
    user_title_chars: int = Field(200, ge=8)  # each title in a user history is cut to this
    user_empty: str = "nothing yet"


def clean_value(value: object, max_chars: int, sep_mark: str = ";",
                replacement: str = ",") -> str | None:
    """One attribute value as a single clean line, or None when it says nothing.

    Unescapes HTML entities and drops tags, joins lists with ", ", replaces the separator
    mark, collapses whitespace and caps the length at a word boundary ("…" marks the cut).
    """
    if value is None:
        return None
    if isinstance(value, list | tuple | np.ndarray | pl.Series):
        parts = [clean_value(v, max_chars, sep_mark, replacement) for v in value]
        value = ", ".join(p for p in parts if p)
    text = _TAG.sub("", _BLOCK_TAG.sub(" ", html.unescape(str(value))))
    if sep_mark:
        text = text.replace(sep_mark, replacement)
    text = _SPACE.sub(" ", text).strip()
    if text.lower() in NULL_LIKE:
        return None
    if len(text) > max_chars:
        cut = text[: max_chars - 1]
        space = cut.rfind(" ")
        text = (cut[:space] if space > max_chars // 2 else cut).rstrip(" ,.;:") + "…"
    return text


def _frame(items: pl.DataFrame | Sequence[dict]) -> pl.DataFrame:
    if not isinstance(items, pl.DataFrame):
        items = pl.DataFrame(list(items), infer_schema_length=None)
    df = items
    if "item_id" not in df.columns:
        raise InputError("items have no item_id column")
    df = df.sort("item_id")
    if df["item_id"].n_unique() != df.height:
        raise InputError("items have duplicate item_id values")
    return df


def _columns(df: pl.DataFrame, cfg: PromptConfig, dataset_name: str) -> list[str]:
    present = [c for c in df.columns if c not in ID_COLUMNS]
    if cfg.attributes is None:
        cols = present
    else:
        missing = [a for a in cfg.attributes if a not in present]
        if missing:
            raise InputError(
                f"dataset {dataset_name} has no text attribute {missing[0]!r}; it has: "
                f"{', '.join(present) or 'none'}"
            )
        cols = list(cfg.attributes)
    if not cols and not cfg.ids_as_text:
        raise InputError(
            f"dataset {dataset_name} has no text attributes; set ids_as_text to embed "
            "'item <id>' strings instead (they carry no meaning)"
        )
    return cols


def _key(column: str, cfg: PromptConfig) -> str:
    return cfg.labels.get(column, column.replace("_", " "))


def item_attribute_pairs(items: pl.DataFrame | Sequence[dict], cfg: PromptConfig,
                         dataset_name: str = "dataset") -> tuple[np.ndarray, list[Pairs]]:
    """(item ids [N] int64 ascending, cleaned (key, value) pairs per item; empty ones skipped).

    SCFT-style augmentation shuffles and drops these pairs, then calls `render_item`.
    """
    df = _frame(items)
    cols = _columns(df, cfg, dataset_name)
    mark = cfg.separator.strip()
    columns = {c: df[c].to_list() for c in cols}
    pairs: list[Pairs] = []
    for row in range(df.height):
        one = []
        for c in cols:
            v = clean_value(columns[c][row], cfg.max_value_chars, mark, cfg.separator_replacement)
            if v is not None:
                one.append((_key(c, cfg), v))
        pairs.append(one)
    return df["item_id"].to_numpy().astype(np.int64), pairs


def render_item(pairs: Pairs, cfg: PromptConfig, item_id: int | None = None) -> str:
    """One item's text from its pairs, capped at max_item_chars on an attribute boundary.

    An item with no usable attribute is rendered from its id (so it still gets a vector).
    """
    if not pairs:
        return cfg.id_template.format(item_type=cfg.item_type, item_id=item_id)
    if cfg.style == "kv":
        parts = [cfg.kv_template.format(key=k, value=v) for k, v in pairs]
        joiner = cfg.separator
    else:
        parts = []
        for k, v in pairs:
            template = cfg.sentence_templates.get(k, cfg.sentence_default)
            parts.append(template.format(key=k, value=v, item_type=cfg.item_type))
        joiner = " "
    head = cfg.instruction.format(item_type=cfg.item_type) if cfg.instruction else ""
    budget = cfg.max_item_chars - (len(head) + 1 if head else 0)
    body = parts[0][:budget]
    for p in parts[1:]:
        if len(body) + len(joiner) + len(p) > budget:
            break
        body += joiner + p
    return f"{head}\n{body}" if head else body


def item_texts(items: pl.DataFrame | Sequence[dict], cfg: PromptConfig,
               dataset_name: str = "dataset") -> tuple[np.ndarray, list[str]]:
    """(item ids [N] int64 ascending, one text per item)."""
    ids, pairs = item_attribute_pairs(items, cfg, dataset_name)
    return ids, [render_item(p, cfg, int(i)) for i, p in zip(ids, pairs, strict=True)]


def title_lookup(items: pl.DataFrame | Sequence[dict], cfg: PromptConfig,
                 dataset_name: str) -> list[str | None]:
    """Cleaned title per item id (index = id; None where there is none)."""
    df = _frame(items)
    cols = _columns(df, cfg, dataset_name)
    column = cfg.user_attribute if cfg.user_attribute in cols else (cols[0] if cols else None)
    ids = df["item_id"].to_numpy().astype(np.int64)
    out: list[str | None] = [None] * (int(ids.max()) + 1 if len(ids) else 1)
    values = df[column].to_list() if column else [None] * len(ids)
    mark = cfg.user_separator.strip()
    for i, v in zip(ids, values, strict=True):
        title = clean_value(v, min(cfg.max_value_chars, cfg.user_title_chars), mark,
                            cfg.separator_replacement)
        if title is None and column is None:  # ids_as_text on a dataset without text
            title = cfg.id_template.format(item_type=cfg.item_type, item_id=int(i))
        out[int(i)] = title
    return out


def user_texts(items: pl.DataFrame | Sequence[dict], train: Sequence[np.ndarray],
               cfg: PromptConfig, dataset_name: str = "dataset") -> list[str]:
    """One text per user (element u-1 ↔ user u) from the titles of `train[u-1]`, oldest first.

    Pass `Split.train`: the training part of each sequence is all a user prompt may see.
    Keeps the `user_max_items` most recent titles, then drops the oldest until the history
    fits in `user_max_chars`; items without a title are skipped.
    """
    titles = title_lookup(items, cfg, dataset_name)
    out = []
    for seq in train:
        hist = [titles[i] for i in np.asarray(seq, dtype=np.int64) if 0 < i < len(titles)]
        hist = [t for t in hist if t is not None][-cfg.user_max_items :]
        text = cfg.user_separator.join(hist)
        while len(text) > cfg.user_max_chars and len(hist) > 1:
            hist = hist[1:]
            text = cfg.user_separator.join(hist)
        text = text[-cfg.user_max_chars :] if text else cfg.user_empty
        out.append(cfg.user_template.format(history=text, item_type=cfg.item_type))
    return out
