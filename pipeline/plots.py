"""PNG bar charts of result rows, drawn with matplotlib's object API on the Agg canvas.

No pyplot: figures are plain `Figure` objects, never registered in pyplot's global
figure manager, so nothing leaks between calls or threads and no display is needed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from embeddings_store.atomic import atomic_path
from pipeline.compare_report import GROUPS, aggregate

HEAD_TAIL = ("overall", "head_item", "tail_item", "head_user", "tail_user")
_NICE = {"overall": "overall", "head_item": "head items", "tail_item": "tail items",
         "head_user": "head users", "tail_user": "tail users"}


def _save(fig: Figure, path: Path) -> Path:
    """Render to PNG aside, then rename into place (a reader never sees half a file)."""
    FigureCanvasAgg(fig)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    return path


def _bars(ax, groups: list[str], series: list[tuple[str, list[float], list[float]]],
          colours: dict[str, str] | None = None) -> None:
    """Grouped bars: one cluster per group, one bar per (label, means, stds) series;
    `colours` keeps a label's colour the same across panels."""
    x = np.arange(len(groups))
    width = 0.8 / max(len(series), 1)
    for i, (name, means, stds) in enumerate(series):
        colour = (colours or {}).get(name, f"C{i % 10}")
        ax.bar(x - 0.4 + width * (i + 0.5), means, width, yerr=stds, capsize=2, label=name,
               color=colour, ecolor="0.25")
    ax.set_xticks(x, [_NICE.get(g, g) for g in groups])
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)


def compare_plot(agg: pl.DataFrame, path: Path, protocol: str = "full",
                 metric: str = "ndcg@10", title: str | None = None) -> Path:
    """One panel per backbone: bars of overall / tail-item / tail-user `metric` per method
    (mean over seeds, std error bars), from `pipeline.compare_report.aggregate` rows."""
    data = agg.filter(pl.col("protocol") == protocol)
    backbones = list(dict.fromkeys(data["backbone"].to_list())) or ["(no rows)"]
    colours = _colours(data["label"].to_list())
    fig = Figure(figsize=(max(4.5, 1.2 + 0.25 * _max_series(data)) * len(backbones), 4.2))
    axes = fig.subplots(1, len(backbones), sharey=True, squeeze=False)[0]
    for ax, backbone in zip(axes, backbones, strict=True):
        part = data.filter(pl.col("backbone") == backbone)
        series = []
        for name in dict.fromkeys(part["label"].to_list()):
            rows = {r["group"]: r for r in part.filter(pl.col("label") == name).iter_rows(named=True)}
            series.append((name, [rows[g]["mean"] if g in rows else np.nan for g in GROUPS],
                           [rows[g]["std"] if g in rows else 0.0 for g in GROUPS]))
        _bars(ax, list(GROUPS), series, colours)
        ax.set_title(backbone)
    axes[0].set_ylabel(f"{protocol} {metric.upper()} (test)")
    handles, labels = _legend(axes)
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 4),
                   bbox_to_anchor=(0.5, -0.02 - 0.05 * ((len(labels) - 1) // 4)), fontsize=8)
    fig.suptitle(title or f"{protocol} {metric}: mean ± std over seeds")
    return _save(fig, path)


def head_tail_plot(rows: list[dict], path: Path, protocol: str = "full",
                   metric: str = "ndcg@10", title: str | None = None) -> Path:
    """The SRS flow's plot: bars of overall and head/tail item and user `metric` for each
    (backbone, method, embedding), mean over seeds with std error bars."""
    agg = aggregate(rows, metric, HEAD_TAIL).filter(pl.col("protocol") == protocol)
    agg = agg.with_columns(name=pl.format("{} {}", pl.col("backbone"), pl.col("label")))
    series = []
    for name in dict.fromkeys(agg["name"].to_list()):
        part = {r["group"]: r for r in agg.filter(pl.col("name") == name).iter_rows(named=True)}
        series.append((name, [part[g]["mean"] if g in part else np.nan for g in HEAD_TAIL],
                       [part[g]["std"] if g in part else 0.0 for g in HEAD_TAIL]))
    fig = Figure(figsize=(max(6.0, 1.5 * len(HEAD_TAIL) + 0.3 * len(series)), 4.2))
    ax = fig.subplots()
    _bars(ax, list(HEAD_TAIL), series)
    ax.set_ylabel(f"{protocol} {metric.upper()} (test)")
    if series:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.set_title(title or f"head / tail {protocol} {metric}: mean ± std over seeds")
    return _save(fig, path)


def _colours(labels: list[str]) -> dict[str, str]:
    """A fixed colour per label, in order of first appearance (tab20 past ten labels)."""
    names = list(dict.fromkeys(labels))
    if len(names) <= 10:
        return {n: f"C{i}" for i, n in enumerate(names)}
    from matplotlib import colormaps

    cmap = colormaps["tab20"]
    return {n: cmap(i % 20) for i, n in enumerate(names)}


def _max_series(data: pl.DataFrame) -> int:
    if data.is_empty():
        return 1
    return int(data.group_by("backbone").agg(pl.col("label").n_unique())["label"].max())


def _legend(axes) -> tuple[list, list[str]]:
    """Legend entries of every panel, each label once (panels may lack some methods)."""
    seen: dict[str, object] = {}
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            seen.setdefault(lab, h)
    return list(seen.values()), list(seen)
