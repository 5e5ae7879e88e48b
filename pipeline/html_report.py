"""One self-contained HTML page per `train` / `compare` run: the results table (mean ± std
over seeds), the plot (embedded as a data URI), the resolved configs and the stored
versions used. No script, no stylesheet or font from the network: it opens offline."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

import polars as pl

from embeddings_store.atomic import atomic_path

STYLE = """body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:72em;color:#222}
table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:.25em .6em;
text-align:left}th{background:#f3f3f3}td.n{text-align:right;font-variant-numeric:tabular-nums}
pre{background:#f7f7f7;padding:.8em;overflow:auto}img{max-width:100%}.note{color:#555}"""


def _table(frame: pl.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in frame.columns)
    body = []
    for row in frame.iter_rows():
        cells = []
        for v in row:
            text = "" if v is None else str(v)
            numeric = text[:1].isdigit() or "±" in text
            cells.append(f"<td{' class=n' if numeric else ''}>{html.escape(text)}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def write_html(path: Path, title: str, table: pl.DataFrame, notes: list[str],
               plot: Path | None = None, configs: dict[str, dict] | None = None,
               inputs: dict[str, str | None] | None = None) -> Path:
    """Write the page aside then rename; returns `path`."""
    parts = [f"<!doctype html><html lang=en><meta charset=utf-8><title>{html.escape(title)}"
             f"</title><style>{STYLE}</style><h1>{html.escape(title)}</h1>", _table(table)]
    parts += [f"<p class=note>{html.escape(n)}</p>" for n in notes]
    if plot is not None and plot.is_file():
        data = base64.b64encode(plot.read_bytes()).decode()
        parts.append(f"<h2>Plot</h2><img alt='{html.escape(plot.name)}' "
                     f"src='data:image/png;base64,{data}'>")
    if inputs:
        rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v or '—')}</td></tr>"
                       for k, v in inputs.items())
        parts.append(f"<h2>Inputs</h2><table>{rows}</table>")
    for name, cfg in (configs or {}).items():
        parts.append(f"<h2>Config: {html.escape(name)}</h2>"
                     f"<pre>{html.escape(json.dumps(cfg, indent=2, sort_keys=True))}</pre>")
    with atomic_path(path, suffix=".html") as tmp:
        tmp.write_text("".join(parts) + "</html>\n", encoding="utf-8")
    return path
