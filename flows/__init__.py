"""Prefect orchestration only: tasks call pipeline/ functions, flows wire them."""
