"""Stage ``evaluate``: every checkpoint and the baselines on the held-out problems; the registry.

- :mod:`~tasks.evaluate.scoring`: accuracy, macro-F1, PerturbQA per-gene AUROC;
- :mod:`~tasks.evaluate.report`: the comparison table and figures;
- :mod:`~tasks.evaluate.biomni_eval`: a Biomni-Eval1-compatible scorer;
- :mod:`~tasks.evaluate.registry`: the MLflow model registry (challenger, champion).
"""
