"""Framework-free domain logic of llm4srs: data, splits, training loops, evaluation.

Nothing in this package imports Prefect; flows/ wires these functions together.
"""
