"""`fused`: stored item tables concatenated into `items/fused` (pipeline/methods/fused/write.py)."""

from __future__ import annotations

from pipeline.methods.registry import GenContext, GeneratorBase, register_generator


class Fused(GeneratorBase):
    name = "fused"
    kinds = ("items/fused",)
    needs = ("llmemb",)  # the default parts; other parts are read from the store as they are
    summary = "concatenation of stored item kinds (default RAT + SCFT) -> items/fused"
    config_model = "pipeline.methods.fused.config:FusedConfig"

    def stored_inputs(self, config, upstream: dict[str, str]) -> list[str]:
        return [kind for kind in config.parts if kind not in upstream]

    def write(self, ctx: GenContext) -> dict[str, str]:
        from pipeline.methods.fused.write import write_fused
        from pipeline.store_io import resolve_kind

        refs = {kind: ctx.upstream.get(kind) or resolve_kind(ctx.dataset, ctx.store, kind, "items")
                for kind in ctx.config.parts}
        ref = write_fused(ctx.dataset, ctx.store, ctx.config, refs)
        return {ref.kind: str(ref)}


register_generator(Fused())
