import numpy as np
import pandas as pd

from tasks.problems.integration import eligible_motifs, integration_problems
from tests.problems_fixtures import cell_table, dna_table, motif_table


def test_neither_modality_alone_determines_the_answer():
    cells = cell_table(8)
    motifs = eligible_motifs(motif_table(), {"TFA", "TFB", "TFC"})
    assert sorted(motifs["tf_name"]) == ["TFA", "TFB", "TFC"]
    split_of = {f"cell:{c}": "train" for c in cells["cell_id"]}
    split_of.update({f"motif:{m}": "train" for m in motifs["motif_id"]})
    rows, stats = integration_problems(cells, motifs, dna_table(), split_of, 6, 80, 0.8, 0.05, 20,
                                       np.random.default_rng(0))
    df = pd.DataFrame(rows)
    assert stats["quads"]["train"] >= 3 and len(df) == 4 * stats["quads"]["train"]
    df["cell"] = df["source_ids"].str[0]
    df["window"] = df["prompt"].str.extract(r"<dna>([ACGT]+)</dna>")[0]
    df["sentence"] = df["prompt"].str.extract(r"(<cell>.*</cell>)")[0]
    # the same DNA window gets both answers (depending on the cell), and so does the same cell
    assert (df.groupby("window")["answer"].nunique() == 2).all()
    assert (df.groupby("cell")["answer"].nunique() == 2).all()
    assert (df["answer"] == "yes").mean() == 0.5
    for r in df.itertuples():  # and the answer is right
        tf = motifs.set_index("motif_id").loc[r.source_ids[1], "tf_name"]
        assert (r.answer == "yes") == (tf in r.sentence.strip("<cell>/").split(", "))
