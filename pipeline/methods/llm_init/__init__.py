"""Stage 2, LLM-init: a stored item kind as the backbone's item table (PCA-initialised
and trained, or frozen behind an adapter).
"""
