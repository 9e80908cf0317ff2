"""``omicsforge``: ad-hoc commands on a user's own files, reusing the stages' tasks.

Pipeline runs go through ``dvc repro``; these commands are for one-off use (textify my h5ad,
evaluate this BEIR folder) and write nothing to MLflow.
"""
from __future__ import annotations

import typer

app = typer.Typer(help="omicsforge: omics as text for language models.", no_args_is_help=True)

# --- textify: cells / dna / proteins ------------------------------------------------------------
textify_app = typer.Typer(help="Write omics data as text (<cell>, <dna>, <protein>).", no_args_is_help=True)
app.add_typer(textify_app, name="textify")


# --- limit: retrieval benchmark -----------------------------------------------------------------
limit_app = typer.Typer(help="LIMIT-style retrieval benchmark.", no_args_is_help=True)
app.add_typer(limit_app, name="limit")


if __name__ == "__main__":
    app()
