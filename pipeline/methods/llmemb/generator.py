"""LLMEmb as two generators: `llmemb-scft` (contrastive LoRA fine-tuning on attribute views)
and `llmemb` (RAT: the frozen SCFT table + adapter aligned to `items/sasrec-id`)."""

from __future__ import annotations

from pipeline.methods.registry import GenContext, GeneratorBase, register_generator


class Scft(GeneratorBase):
    name = "llmemb-scft"
    kinds = ("items/llmemb-scft",)
    needs_text = True
    uses_llm = True
    summary = "SCFT: contrastive LoRA on attribute-augmented item text -> items/llmemb-scft"
    no_text = "has no item text attributes: llmemb (SCFT augments attributes) cannot run on ids alone"
    config_model = "pipeline.methods.llmemb.config:ScftConfig"

    def write(self, ctx: GenContext) -> dict[str, str]:
        from pipeline.methods.llmemb.scft import write_scft

        ref = write_scft(ctx.dataset, ctx.config, ctx.llm, ctx.store, ctx.run_dir, ctx.resume)
        return {ref.kind: str(ref)}


class Rat(GeneratorBase):
    name = "llmemb"
    kinds = ("items/llmemb-rat",)
    needs = ("sasrec-id", "llmemb-scft")
    summary = "RAT: frozen SCFT table + adapter aligned to items/sasrec-id -> items/llmemb-rat"
    config_model = "pipeline.methods.llmemb.config:RatConfig"

    def negatives(self, config) -> int:
        return 100  # RAT trains a SASRec on the default leave-one-out split

    def write(self, ctx: GenContext) -> dict[str, str]:
        from pipeline.methods.llmemb.rat import SCFT_KIND, TEACHER_KIND, write_rat
        from pipeline.split import leave_one_out

        ref = write_rat(ctx.dataset, leave_one_out(ctx.dataset), ctx.config, ctx.store,
                        ctx.run_dir, ctx.resume, scft_ref=ctx.upstream[SCFT_KIND],
                        teacher_ref=ctx.upstream[TEACHER_KIND])
        return {ref.kind: str(ref)}


register_generator(Scft())
register_generator(Rat())
