"""`tslrec`: k-means categories on `items/sasrec-id`, user-level preference SFT of the LLM,
item vectors from the tuned LLM."""

from __future__ import annotations

from pipeline.methods.registry import GenContext, GeneratorBase, register_generator


class Tslrec(GeneratorBase):
    name = "tslrec"
    kinds = ("items/tslrec",)
    needs = ("sasrec-id",)
    uses_llm = True
    summary = "TSLRec: preference-reconstruction SFT over sasrec-id categories -> items/tslrec"
    config_model = "pipeline.methods.tslrec.write:TslrecConfig"

    def write(self, ctx: GenContext) -> dict[str, str]:
        from pipeline.methods.tslrec.write import SASREC_KIND, write_tslrec
        from pipeline.split import leave_one_out

        ref = write_tslrec(ctx.dataset, leave_one_out(ctx.dataset), ctx.config, ctx.llm,
                           ctx.store, ctx.run_dir, sasrec_ref=ctx.upstream[SASREC_KIND],
                           resume=ctx.resume)
        return {ref.kind: str(ref)}

    def report(self, store, ref: str) -> str | None:
        """Markdown for the flow's artifact: held-out preference reconstruction."""
        from pipeline.methods.tslrec.write import report_markdown

        version = store.resolve(ref)
        return report_markdown(version.dataset, ref, store.manifest(version).metrics)


register_generator(Tslrec())
