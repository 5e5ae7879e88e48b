"""pipeline/methods/llmemb"""
