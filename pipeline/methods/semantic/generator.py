"""`semantic`: the frozen LLM's mean-pooled, centred item and user vectors."""

from __future__ import annotations

from pipeline.methods.registry import GenContext, GeneratorBase, register_generator
from pipeline.presets import validate


class Semantic(GeneratorBase):
    name = "semantic"
    kinds = ("items/semantic-{llm}", "users/semantic-{llm}")
    needs_text = True  # unless the config says ids_as_text (`--ids-as-text`)
    uses_llm = True
    summary = "frozen LLM -> items/semantic-<llm>, users/semantic-<llm> (training items only)"
    no_text = ("has no item text attributes; pass --ids-as-text to embed 'item <id>' "
               "strings instead (they carry no meaning)")

    def load_config(self, overrides, llm):
        from pipeline.methods.semantic.write import SemanticConfig

        base = {"model": llm.model_dump(mode="json")} if llm is not None else {}
        return validate(SemanticConfig, {**base, **overrides}, "semantic config")

    def write(self, ctx: GenContext) -> dict[str, str]:
        from pipeline.methods.semantic.write import write_semantic
        from pipeline.split import leave_one_out

        refs = write_semantic(ctx.dataset, leave_one_out(ctx.dataset), ctx.config, ctx.store)
        return {ref.kind: str(ref) for ref in refs.values()}


register_generator(Semantic())
