import numpy as np
import pytest

from tasks.corpus import knowledge

from tasks.common import schemas
from tasks.common.errors import InputError
from tests.conftest import PROJECT

PERTURBQA = PROJECT / "data" / "raw" / "perturbqa"


def test_perturbqa_pairs_keep_the_benchmark_split():
    pairs = knowledge.perturbqa_pairs(PERTURBQA, ["k562-de", "k562-dir"])
    schemas.PerturbPairs.validate(pairs)
    assert set(pairs["task"]) == {"de", "dir"}
    de = pairs[pairs["task"] == "de"]
    train = set(de.loc[de["split"] == "train", "pert"])
    test = set(de.loc[de["split"] == "test", "pert"])
    assert train and test and not train & test  # PerturbQA's test perturbations are unseen


@pytest.mark.parametrize("content, message", [
    ("pert,gene,split\nA,B,train\n", r"x-de\.csv: header: missing columns \['label'\]"),
    ("pert,gene,label,split\nA,B,1,train\nA,C,2,test\n", r"x-de\.csv: row 3: label '2' is not 0 or 1"),
    ("pert,gene,label,split\nA,B,1,val\n", r"x-de\.csv: row 2: split 'val'"),
])
def test_perturbqa_bad_csv(tmp_path, content, message):
    (tmp_path / "x-de.csv").write_text(content)
    with pytest.raises(InputError, match=message):
        knowledge.perturbqa_pairs(tmp_path, ["x-de"])


def test_perturbqa_listed_file_missing(tmp_path):
    with pytest.raises(InputError, match=r"k562-de\.csv: file: not found"):
        knowledge.perturbqa_pairs(tmp_path, ["k562-de"])


def test_protein_families_from_shipped_hmms():
    families = knowledge.protein_families()
    schemas.ProteinFamilies.validate(families)
    assert "2-Hacid_dh_C" in set(families["name"])
    assert "RF00001" not in set(families["accession"])  # the RNA model is not a protein family


def test_jaspar_frequencies_and_scaled_matrices():
    motifs = knowledge.jaspar_motifs("JASPAR2024", "CORE", "vertebrates")
    schemas.Motifs.validate(motifs)
    assert len(motifs) == 879
    arnt = motifs.set_index("motif_id").loc["MA0004.1"]
    assert arnt.tf_name == "Arnt"
    np.testing.assert_allclose(np.asarray(list(arnt.pfm)).sum(axis=1), 1.0)
    assert 0 < (~motifs["counts_consistent"]).sum() < len(motifs)


def test_reference_cells_errors(tmp_path):
    with pytest.raises(InputError, match="no dataset 'nope'"):
        knowledge.load_reference_cells("scanpy:nope")
    with pytest.raises(InputError, match=r"x\.h5ad: file: not found"):
        knowledge.load_reference_cells(str(tmp_path / "x.h5ad"))


def test_marker_genes_are_known_pbmc_markers_from_train_cells_only():
    from tasks.common.splits import assign_splits, cell_strata

    markers, cells = knowledge.marker_genes("scanpy:pbmc68k_reduced", "bulk_labels", 20,
                                            test_fraction=0.2, seed=0)
    schemas.Markers.validate(markers)
    schemas.MarkerCells.validate(cells)
    b_cells = set(markers.loc[markers["cell_type"] == "CD19+ B", "gene"])
    assert {"CD79A", "CD79B"} & b_cells or {"MS4A1", "CD74"} & b_cells
    # the problems stage's split of the same cells (stratified by type) puts none of them in test
    adata = knowledge.load_reference_cells("scanpy:pbmc68k_reduced")
    strata = cell_strata(adata.obs_names, adata.obs["bulk_labels"])
    split = assign_splits(list(strata), 0.2, 0, strata)
    assert {split[f"cell:{c}"] for c in cells["cell_id"]} == {"train"}
    assert len(cells) == sum(v == "train" for v in split.values()) < adata.n_obs
