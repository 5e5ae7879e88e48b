"""Command-line options shared by several commands, declared once (typer `Annotated` aliases)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

DatasetOpt = Annotated[str, typer.Option(
    "--dataset", "-d", help="movielens-100k | source:PATH (lcrec, amazon, yelp, movielens-1m, "
    "table) | a preset in configs/datasets | a YAML file")]
DataDirOpt = Annotated[Path, typer.Option(help="where raw and prepared datasets live")]
StoreOpt = Annotated[Path, typer.Option(envvar="LLM4SRS_STORE", help="embeddings store root")]
RunsDirOpt = Annotated[Path, typer.Option(help="checkpoints and result tables")]
SeedsOpt = Annotated[str, typer.Option(help="comma list of training seeds")]
ResumeOpt = Annotated[bool, typer.Option(help="continue interrupted runs from their last checkpoint")]
RowsJsonOpt = Annotated[bool, typer.Option("--json", help="print result rows as one JSON list")]
