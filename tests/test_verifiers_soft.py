"""Soft verifiers on hand-made cases: each ranks the right claim above a wrong one."""
import numpy as np
import pandas as pd
import pytest

from tasks.corpus import knowledge
from tasks.verifiers.cell_type import CellTypeModel, fit_cell_type, genes_of
from tasks.verifiers.perturbation import PerturbationModel, fit_perturbation
from tasks.verifiers.phenotype import PhenotypeScorer, patient_terms
from tasks.verifiers.protein_family import NO_HIT_BITS, FamilyScorer
from tasks.verifiers.tf_binding import MotifScorer, window_of
from tests.verifier_fixtures import B_GENES, M_GENES, MOTIFS, T_GENES, cell_sentence, perturbqa


def _cells():
    sentences, labels = [], []
    for label, genes in [("T cell", T_GENES), ("B cell", B_GENES), ("CD14+ Monocyte", M_GENES)]:
        for shift in range(4):
            sentences.append(genes_of(cell_sentence(genes, shift)))
            labels.append(label)
    return sentences, labels


def test_cell_type_classifier_gives_probability_of_the_claim(tmp_path):
    model = fit_cell_type(*_cells())
    cell = genes_of("<cell>MS4A1, CD79A, ACTB, CD74</cell>")
    p_b, p_t = model.probability(cell, "b cell"), model.probability(cell, "T cell")
    assert p_b > 0.5 > p_t
    assert model.probability(cell, "Neutrophil") == 0.0
    assert model.probability([], "B cell") == 0.0
    model.save(tmp_path)
    again = CellTypeModel.load(tmp_path)
    assert again.probability(cell, "B cell") == pytest.approx(p_b, rel=1e-5)


def test_cell_type_classifier_handles_two_types_and_rejects_one():
    sentences, labels = _cells()
    two = fit_cell_type(sentences[:8], labels[:8])
    assert two.probability(genes_of("<cell>CD3D, CD3E</cell>"), "T cell") > 0.5
    with pytest.raises(ValueError, match="at least two"):
        fit_cell_type(sentences[:4], labels[:4])


def _window(site: str, gc_filler: str = "T") -> str:
    return gc_filler * 40 + site + gc_filler * 40


@pytest.mark.parametrize("background", ["uniform", "gc"])
def test_tf_binding_prefers_the_planted_motif(background):
    scorer = MotifScorer(MOTIFS, background=background)
    choices = ["EBOX1", "GATAX", "SOXY"]
    window = _window("AGATAA")
    assert scorer.reward(window, "GATAX", choices) > 0.9
    assert scorer.reward(window, "EBOX1", choices) < 0.05
    # the reverse strand counts: TTATCT is AGATAA reverse-complemented
    assert scorer.reward(_window("TTATCT", "C"), "GATAX", choices) > 0.9
    # a claim by JASPAR id resolves to the same matrix
    assert scorer.reward(window, "MA9002.1", choices) > 0.9


def test_tf_binding_edge_cases():
    scorer = MotifScorer(MOTIFS)
    assert scorer.reward(_window("CACGTG"), "NOTATF", ["EBOX1", "GATAX"]) == 0.0
    assert scorer.best_site("MA9003.1", "ACG") == float("-inf")  # window shorter than the motif
    assert window_of("x <dna>acgt\nACGT</dna>") == "ACGTACGT"
    with pytest.raises(ValueError, match="background"):
        MotifScorer(MOTIFS, background="flat").best_site("MA9001.1", "CACGTGAA")


def _luxc_sequence() -> str:
    from pyhmmer import easel

    path = knowledge.hmm_dir().parents[1] / "seqs" / "LuxC.faa"
    with easel.SequenceFile(path, digital=False) as fh:
        return next(iter(fh)).sequence


def test_protein_family_scores_the_true_family_highest():
    scorer = FamilyScorer([knowledge.hmm_dir() / f for f in ("LuxC.hmm", "KR.hmm", "Thioesterase.hmm")])
    seq = _luxc_sequence()
    choices = ["LuxC", "KR", "Thioesterase"]
    assert scorer.reward(seq, "LuxC", choices) > 0.99
    assert scorer.reward(seq, "KR", choices) < 0.01
    assert scorer.reward(seq, "PF05893", choices) > 0.99  # accession without version
    assert scorer.reward(seq, "Kinase", choices) == 0.0
    assert scorer.bits("KR", seq) >= NO_HIT_BITS


def test_patient_terms_from_prompt_or_evidence():
    assert patient_terms("Seizure (HP:0001250), HP:0001250 again", None) == ["HP:0001250"]
    assert patient_terms("Seizure, ataxia", '{"phenotypes": ["HP:0001250", "bad"]}') == ["HP:0001250"]
    assert patient_terms("Seizure", "{}") == []


def _phenotype_scorer():
    neuro = ["HP:0001250", "HP:0001251", "HP:0001263", "HP:0002353"]
    skeletal = ["HP:0002650", "HP:0001166", "HP:0000545", "HP:0001519"]
    diseases = pd.DataFrame([("OMIM:100001", "OMIM", "Neuro syndrome", h) for h in neuro]
                            + [("OMIM:100002", "OMIM", "Skeletal syndrome", h) for h in skeletal],
                            columns=["disease_id", "source", "disease_name", "hpo_id"])
    genes = pd.DataFrame([("SCN1A", 6323, h) for h in neuro] + [("FBN1", 2200, h) for h in skeletal],
                         columns=["gene_symbol", "gene_id", "hpo_id"])
    return PhenotypeScorer(diseases, genes)


def test_phenotype_claims_resolve_to_annotations():
    scorer = _phenotype_scorer()
    assert scorer.disease_id("Neuro syndrome") == "OMIM:100001"
    assert scorer.disease_id("skeletal syndrome.") == "OMIM:100002"
    assert scorer.disease_id("something (OMIM:100002)") == "OMIM:100002"
    assert scorer.disease_id('{"disease_name": "x", "OMIM_ID": "100001"}') == "OMIM:100001"
    assert scorer.disease_id("OMIM:999999") is None
    assert scorer.annotations("scn1a", "gene") is not None
    assert scorer.reward(["HP:0001250"], "Unknown disease", ["Neuro syndrome"], "disease") == 0.0


@pytest.mark.slow
def test_phenotype_similarity_prefers_the_consistent_disease_and_gene():
    scorer = _phenotype_scorer()
    patient = ["HP:0001250", "HP:0001251"]  # seizure, ataxia
    choices = ["Neuro syndrome", "Skeletal syndrome"]
    assert scorer.reward(patient, "Neuro syndrome", choices, "disease") == 1.0
    assert scorer.reward(patient, "Skeletal syndrome", choices, "disease") < 0.7
    assert scorer.reward(patient, "SCN1A", ["SCN1A", "FBN1"], "gene") == 1.0
    assert scorer.reward(patient, "FBN1", ["SCN1A", "FBN1"], "gene") < 0.7
    raw = scorer.reward(patient, "Neuro syndrome", [], "disease")
    assert 0 < raw <= 1


def test_perturbation_model_learns_gene_and_direction_rates(tmp_path):
    pairs = perturbqa()
    model = fit_perturbation(pairs[pairs["split"] == "train"], prior_strength=2.0)
    # an unseen knockdown still inherits the downstream gene's training behaviour
    assert model.probability("k562", "de", "P99", "G1") > 0.7
    assert model.probability("k562", "de", "P99", "G3") < 0.3
    assert model.reward("k562", "dir", "P99", "G2", "up") > model.reward("k562", "dir", "P99", "G2", "down")
    assert model.reward("k562", "dir", "P99", "G4", "down") > 0.5
    assert model.reward("k562", "de", "P1", "G1", "maybe") == 0.0
    with pytest.raises(ValueError, match="task"):
        model.probability("k562", "expr", "P1", "G1")
    model.save(tmp_path)
    again = PerturbationModel.load(tmp_path)
    assert again.probability("k562", "de", "P1", "G5") == pytest.approx(model.probability("k562", "de", "P1", "G5"))
    assert np.isfinite(again.probability("hepg2", "de", "P1", "G1"))  # unknown line: global base rate
