"""pipeline/methods"""
