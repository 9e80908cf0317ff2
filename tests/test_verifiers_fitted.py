"""fit_verifiers / load_verifiers on hand-made problems, and the leakage guarantee."""
import json

import pytest

from tasks.common.errors import InputError
from tasks.verifiers.cell_type import genes_of
from tasks.verifiers.fitted import fit_verifiers, load_verifiers, held_out_entities, training_cells
from tests.verifier_fixtures import SETTINGS, problems, write_corpus


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("verifiers")
    fit_verifiers(problems(), write_corpus(root / "corpus"), root / "out", SETTINGS)
    return root / "out"


def test_folder_holds_no_pickles_and_loads(folder):
    names = {p.name for p in folder.rglob("*") if p.is_file()}
    assert {"cell_type.safetensors", "cell_type.json", "perturbation.json", "manifest.json",
            "motifs.parquet", "LuxC.hmm"} <= names
    assert not [n for n in names if n.endswith((".pkl", ".pickle", ".joblib", ".pt"))]
    bundle = load_verifiers(folder, SETTINGS)
    assert set(bundle.cell_type.classes) == {"T cell", "B cell", "Monocyte"}
    assert bundle.families.family("luxc") == "LuxC"


def test_verifiers_trained_on_the_training_split_never_see_test_entities(folder):
    table = problems()
    held_out = held_out_entities(table)
    assert {e for e in held_out if e.startswith("cell:")} and {e for e in held_out if e.startswith("perturbation:")}
    manifest = json.loads((folder / "manifest.json").read_text())
    seen = set(manifest["cell_type"]["train_entities"]) | set(manifest["perturbation"]["train_entities"])
    assert seen and not seen & held_out

    bundle = load_verifiers(folder, SETTINGS)
    # the test cells carry a gene no training cell has: it is outside the classifier's vocabulary
    test_genes = {g for p in table.loc[table["split"] == "test", "prompt"] for g in genes_of(p)}
    assert "TESTONLY1" in test_genes and "TESTONLY1" not in bundle.cell_type.genes
    # P9 is a training perturbation in PerturbQA's table but a test entity in problems: left out
    assert ("k562", "P9") not in bundle.perturbation.perturbations()
    assert ("k562", "P10") not in bundle.perturbation.perturbations()  # PerturbQA's own test split
    assert ("k562", "P1") in bundle.perturbation.perturbations()


def test_training_cells_read_labels_from_answers_and_evidence():
    table = problems()
    table.loc[0, ["answer_type", "answer"]] = ["gene_set", "CD3D, CD3E"]  # explanation variant
    cells = training_cells(table)
    assert cells.set_index("cell_id").loc["c00", "label"] == "T cell"
    assert not set("cell:" + cells["cell_id"]) & held_out_entities(table)


def test_bad_inputs_name_the_file(tmp_path):
    with pytest.raises(InputError, match="lacks"):
        fit_verifiers(problems().drop(columns=["entity"]), tmp_path, tmp_path / "out", SETTINGS)
    with pytest.raises(InputError, match="motifs.parquet"):
        fit_verifiers(problems(), tmp_path / "empty", tmp_path / "out", SETTINGS)
    with pytest.raises(InputError, match="manifest.json"):
        load_verifiers(tmp_path, SETTINGS)
    assert not (tmp_path / "out").exists()
