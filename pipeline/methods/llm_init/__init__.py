"""pipeline/methods/llm_init"""
