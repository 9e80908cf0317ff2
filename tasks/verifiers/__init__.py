"""Reward functions ("verifiers") of the grpo and evaluate stages.

- :mod:`~tasks.common.answers`: the one place answers are extracted, normalised and compared;
- :mod:`~tasks.verifiers.formatting`, :mod:`~tasks.verifiers.shaping`: format, length, repetition;
- soft verifiers (models of biology): :mod:`~tasks.verifiers.cell_type`,
  :mod:`~tasks.verifiers.tf_binding`, :mod:`~tasks.verifiers.protein_family`,
  :mod:`~tasks.verifiers.phenotype`, :mod:`~tasks.verifiers.perturbation`;
- :mod:`~tasks.verifiers.fitted`: ``fit_verifiers`` (training split only) / ``load_verifiers``;
- :mod:`~tasks.verifiers.compose`: routing by family, TRL reward functions, weighted composition.
"""
