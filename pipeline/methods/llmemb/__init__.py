"""LLMEmb (METHODS.md §4): SCFT (config, augment, scft) then RAT (rat); generator.py
registers `llmemb-scft` and `llmemb`.
"""
