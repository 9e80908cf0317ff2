import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from tasks.problems.baselines import auroc, family_baselines, per_gene_auroc


def test_auroc_matches_sklearn_and_gene_only_scores_are_chance():
    rng = np.random.default_rng(0)
    y, s = rng.integers(0, 2, 200), rng.random(200)
    assert abs(auroc(y, s) - roc_auc_score(y, s)) < 1e-12
    genes = np.repeat(["a", "b", "c", "d"], 50)
    gene_rate = pd.Series(y).groupby(genes).transform("mean")
    assert per_gene_auroc(genes, y, gene_rate)["auroc"] == 0.5


def test_family_baselines():
    df = pd.DataFrame({"family": ["f"] * 6, "answer_type": ["yes_no"] * 6,
                       "split": ["train"] * 4 + ["test"] * 2,
                       "answer": ["yes", "yes", "yes", "no", "yes", "no"], "choices": [[]] * 6})
    out = family_baselines(df)["f"]["yes_no"]
    assert out == {"test_n": 2, "majority_accuracy": 0.5, "random_accuracy": 0.5}
