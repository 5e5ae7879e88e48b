"""pipeline/methods/llmesr"""
