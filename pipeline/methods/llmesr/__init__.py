"""Stage 2, LLM-ESR (METHODS.md §3): train (dual view around a backbone), distill (FAISS
neighbours for RASD; the loss is models/losses/rasd.py).
"""
