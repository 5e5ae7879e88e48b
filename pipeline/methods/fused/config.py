"""The fused table's config: pydantic only (the registry and CLI read it without numpy)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator


class FusedConfig(BaseModel):
    """Which stored item kinds `items/fused` concatenates (their current versions; the
    `llmemb` generator's, when it ran in the same flow). The default pairs LLMEmb's two
    tables: the recommendation-aligned RAT table and the SCFT text table it was adapted from."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    parts: list[str] = Field(["items/llmemb-rat", "items/llmemb-scft"], min_length=2)

    @field_validator("parts")
    @classmethod
    def _item_kinds(cls, parts: list[str]) -> list[str]:
        bad = [p for p in parts if not p.startswith("items/") or p == "items/fused"]
        if bad:
            raise ValueError(f"parts must be other item kinds (items/…), not {', '.join(bad)}")
        if len(set(parts)) != len(parts):
            raise ValueError(f"parts repeat a kind: {', '.join(parts)}")
        return parts
