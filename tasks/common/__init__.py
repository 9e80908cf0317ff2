"""What every stage shares, and nothing stage-specific.

- :mod:`~tasks.common.params`: ``params.yaml`` parsed once into typed objects (one section per stage);
  the sections themselves in :mod:`~tasks.common.params_data` (data stages) and
  :mod:`~tasks.common.params_train` (model stages);
- :mod:`~tasks.common.schemas`: the pandera contracts of every table that crosses a stage boundary;
- :mod:`~tasks.common.storage`: atomic writes of parquet, JSON and CSV;
- :mod:`~tasks.common.errors`: one-line input errors and the stage runner that prints them;
- :mod:`~tasks.common.tracking`: the MLflow run of a stage execution;
- :mod:`~tasks.common.dispatch`: child processes through ``accelerate launch`` and the GPU slots;
- :mod:`~tasks.common.splits`: the one train/test split of entities (problems; corpus's markers);
- :mod:`~tasks.common.prompts`: every prompt, and the one builder of a problem's chat messages;
- :mod:`~tasks.common.answers`: the one answer contract (extract, normalise, compare) that filters
  annotated traces, rewards GRPO and scores evaluation.
"""
