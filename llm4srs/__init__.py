"""llm4srs command line: thin typer commands over flows/ and pipeline/."""
