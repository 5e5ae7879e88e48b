"""`items/fused`: several stored item tables as one (LLM-init from more than one view)."""
