"""The registries: the only lists of stage-1 generators and stage-2 methods.

A stage-1 **generator** writes one or more stored kinds (`items/…`, `users/…`) for a
dataset. It is one object with one shape (`Generator`); the embeddings flow runs the chosen
ones in `needs` order, the CLI takes its choices and the preflight its text requirement from
here. Adding a generator is one module defining an object and calling
`register_generator(obj)` (the built-in ones are imported at the bottom of this file).

A stage-2 **method** (`id`, `llm-init`, `llmesr`, …) is how `llm4srs train` turns a backbone
and optional stored kinds into a trained run: `pipeline/runs.py` dispatches on METHODS.

Registering must stay cheap: a generator module imports its heavy code inside `write`.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pipeline.errors import InputError

if TYPE_CHECKING:
    from pydantic import BaseModel

    from embeddings_store import EmbeddingStore
    from pipeline.data.dataset import Dataset
    from pipeline.llm.spec import LLMSpec


@dataclass(frozen=True)
class GenContext:
    """Everything a generator's `write` may use; it returns {kind: exact version ref}."""

    dataset: Dataset
    store: EmbeddingStore
    run_dir: Path  # checkpoints of this (generator, config, upstream) — resumable
    config: BaseModel  # the generator's own validated config (`load_config`)
    llm: LLMSpec | None  # the LLM of an LLM generator, else None
    upstream: dict[str, str]  # kind -> exact version ref, for every kind of every need
    resume: bool = True


class Generator(Protocol):
    name: str  # "llmemb"
    kinds: tuple[str, ...]  # what it writes, e.g. ("items/llmemb-rat",); "{llm}" = the LLM's short name
    needs: tuple[str, ...]  # generators that must run first (their kinds reach `upstream`)
    needs_text: bool  # reads item text (a dataset without it is refused before any work)
    uses_llm: bool  # reads the `--model` LLM (checked offline before any work)
    summary: str

    def load_config(self, overrides: dict[str, Any], llm: LLMSpec | None) -> BaseModel:
        """Validated config from CLI/flow overrides (InputError: one line)."""
        ...

    def write(self, ctx: GenContext) -> dict[str, str]:
        """Compute and store; {kind: exact version ref} for each kind written."""
        ...

    def stored_inputs(self, config: BaseModel, upstream: dict[str, str]) -> list[str]:
        """Kinds read from the store beyond `upstream` (GeneratorBase: none)."""
        ...


class GeneratorBase:
    """Defaults of the `Generator` shape: needs nothing, reads no text and no LLM. Its
    `load_config` validates the pydantic model named "module:Class" in `config_model`,
    imported on first use (registering stays cheap)."""

    name: str
    config_model: str
    needs: tuple[str, ...] = ()
    needs_text = False
    uses_llm = False

    def stored_inputs(self, config: BaseModel, upstream: dict[str, str]) -> list[str]:
        """Kinds it reads from the store as they are, beyond `upstream` (its needs' output):
        the task's cache key pins their current versions, so a new one reruns it."""
        return []

    def negatives(self, config: BaseModel) -> int:
        """Sampled-ranking negatives per user its evaluation draws (0: it does not evaluate);
        the CLI checks the catalogue allows them before any flow starts."""
        return 0

    def load_config(self, overrides: dict[str, Any], llm: LLMSpec | None) -> BaseModel:
        from pipeline.presets import validate

        module, _, cls = self.config_model.partition(":")
        model = getattr(importlib.import_module(module), cls)
        return validate(model, overrides, f"{self.name} config")


GENERATORS: dict[str, Generator] = {}


def lookup(table: dict[str, Any], name: str, what: str) -> Any:
    """table[name], or one InputError line naming the choices."""
    if name not in table:
        raise InputError(f"unknown {what} {name!r}; choose from {', '.join(table)}")
    return table[name]


def register_generator(gen: Generator) -> Generator:
    """Add (or replace) a generator under `gen.name`; returns it (usable as a decorator)."""
    GENERATORS[gen.name] = gen
    return gen


def get_generator(name: str) -> Generator:
    return lookup(GENERATORS, name, "generator")


def in_needs_order(names: Iterable[str]) -> list[str]:
    """`names` with everything they need, each after its needs (else in registry order)."""
    wanted = set(names)
    for name in wanted:
        get_generator(name)  # unknown: one line
    chosen: list[str] = []

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in chosen:
            return
        if name in path:
            raise ValueError(f"generators need each other: {' -> '.join((*path, name))}")
        for need in get_generator(name).needs:
            visit(need, (*path, name))
        chosen.append(name)

    for name in GENERATORS:
        if name in wanted:
            visit(name, ())
    return chosen


# ---- stage 2 -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Method:
    """A stage-2 method: its CLI name and what stored kinds it reads."""

    name: str  # "srs" (ID-only or LLM-initialised backbone) | "llmesr"
    needs_items: bool  # --embeddings is required
    uses_users: bool  # --user-embeddings is meaningful
    summary: str


METHODS: dict[str, Method] = {}


def register_method(method: Method) -> Method:
    METHODS[method.name] = method
    return method


def get_method(name: str) -> Method:
    return lookup(METHODS, name, "--method")


register_method(Method("srs", needs_items=False, uses_users=False,
                       summary="a backbone, ID-only or on --embeddings (init | frozen_adapter)"))
register_method(Method("llmesr", needs_items=True, uses_users=True,
                       summary="LLM-ESR: dual view on --embeddings, self-distillation over "
                               "--user-embeddings neighbours"))

# The built-in generators, in the order `embed all` runs them (each module registers its own).
BUILT_IN = ("semantic", "sasrec_id", "llmemb", "tslrec", "fused")
for _home in BUILT_IN:
    importlib.import_module(f"pipeline.methods.{_home}.generator")
