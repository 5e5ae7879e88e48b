"""`sasrec-id`: a trained ID-only SASRec's item table (the teacher of RAT, TSLRec's input)."""

from __future__ import annotations

from pipeline.methods.registry import GenContext, GeneratorBase, register_generator


class SasrecId(GeneratorBase):
    name = "sasrec-id"
    kinds = ("items/sasrec-id",)
    summary = "ID-only SASRec (configs/srs/sasrec.yaml + --set) -> items/sasrec-id"

    def load_config(self, overrides, llm):
        from pipeline.config import load_train_config

        return load_train_config("sasrec", overrides)

    def negatives(self, config) -> int:
        return config.n_negatives

    def write(self, ctx: GenContext) -> dict[str, str]:
        from pipeline.methods.sasrec_id.write import write_sasrec_id
        from pipeline.split import leave_one_out

        split = leave_one_out(ctx.dataset, n_neg=ctx.config.n_negatives,
                              neg_seed=ctx.config.neg_seed)
        ref = write_sasrec_id(ctx.dataset, split, ctx.config, ctx.run_dir, ctx.store, ctx.resume)
        return {ref.kind: str(ref)}


register_generator(SasrecId())
