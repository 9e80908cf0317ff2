import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from annotate_fixtures import problems, write_corpus  # noqa: E402

from tasks.annotate.evidence import Knowledge, best_site  # noqa: E402
from tasks.annotate.rationales import EvidenceChecker, OfflineTeacher, derive_answer, write_rationale  # noqa: E402
from tasks.annotate.teachers import Call  # noqa: E402


@pytest.fixture(scope="module")
def kb(tmp_path_factory):
    return Knowledge(write_corpus(tmp_path_factory.mktemp("corpus")))


def _records():
    return {r["id"]: r | {"choices": list(r["choices"])} for r in problems().to_dict("records")}


def test_rationale_cites_markers_and_argues_from_the_evidence_not_the_label(kb):
    recs = _records()
    good = write_rationale(recs["cell-ok-b"], kb)
    assert "Marker CD79A of B cell is at rank 1" in good["steps"][1]
    assert good["conclusion"].endswith("B cell.")
    bad = write_rationale(recs["cell-bad"], kb)  # labelled T cell, B-cell markers on top
    assert recs["cell-bad"]["answer"] == "T cell" and bad["conclusion"].endswith("B cell.")
    assert "B cell" not in bad["steps"][0] and "T cell" not in bad["steps"][0]


@pytest.mark.parametrize("pid,expected", [("cell-ok-t", "T cell"), ("cell-ok-mono", "LYZ, CD14"),
                                          ("tf-gata", "GATA1"), ("tf-spi", "SPI1"), ("pert-yes", "yes"),
                                          ("pert-no", "no"), ("pert-bad", "yes"), ("pert-up", "up"),
                                          ("rd-ok", "Alpha syndrome (OMIM:100001)"),
                                          ("rd-bad", "Delta disease (OMIM:100004)"), ("cg-ok", "GENEB"),
                                          ("int-yes", "yes"), ("int-no", "no")])
def test_checker_rederives_the_rationales_answer(kb, pid, expected):
    rec = _records()[pid]
    trace = write_rationale(rec, kb)
    assert derive_answer(rec["family"], trace["steps"], rec["answer_type"], rec["choices"]) == expected


@pytest.mark.parametrize("pid,expected", [("cell-ok-t", "T cell"), ("tf-gata", "GATA1"), ("pert-yes", "yes"),
                                          ("rd-ok", "Alpha syndrome (OMIM:100001)"), ("cg-ok", "GENEB")])
def test_short_traces_pass_the_same_check_in_a_few_facts_without_the_winner_first(kb, pid, expected):
    rec = _records()[pid]
    full, short = write_rationale(rec, kb), write_rationale(rec, kb, style="short")
    assert derive_answer(rec["family"], short["steps"], rec["answer_type"], rec["choices"]) == expected
    assert sum(map(len, short["steps"])) < sum(map(len, full["steps"]))
    assert short["steps"][0] != full["steps"][0]  # no opening on method
    if len(rec["choices"]) > 1:  # one fact per candidate, no score arithmetic
        assert all(step.count(" is ") <= 2 for step in short["steps"])
        assert not any("ahead of" in step for step in short["steps"])


def test_short_traces_weigh_the_others_in_a_seeded_order_and_end_on_the_winner(kb):
    recs = [r for r in _records().values() if r["answer_type"] == "multiple_choice"
            and r["family"] in ("cell_type", "tf_binding", "rare_disease", "causal_gene")]
    traces = [write_rationale(r, kb, style="short")["steps"] for r in recs]
    winners = [derive_answer(r["family"], steps, r["answer_type"], r["choices"])
               for r, steps in zip(recs, traces)]
    assert winners.count(None) == 0 and winners != [r["answer"] for r in recs]  # evidence, not labels
    for steps, winner in zip(traces, winners):  # the last step alone names the winner (full: the first)
        assert winner in steps[-1] and not any(winner in step for step in steps[:-1])
    again = [write_rationale(r, kb, style="short")["steps"] for r in recs]
    assert again == traces  # seeded: the same problem, the same order
    others = [write_rationale(r, kb, attempt=1, style="short")["steps"] for r in recs]
    assert all(o[-1] == t[-1] for o, t in zip(others, traces))  # a re-ask reorders the others only
    with pytest.raises(ValueError, match="trace style"):
        write_rationale(recs[0], kb, style="long")


def test_checker_recomputes_from_citations_and_ignores_the_stated_comparison():
    steps = ["Reading.", "Marker CD3D of T cell is at rank 30 in the cell sentence.",
             "Marker CD79A of B cell is at rank 1 in the cell sentence.",
             "Weighting each marker, T cell scores 9.00, ahead of B cell (0.10)."]
    assert derive_answer("cell_type", steps, "label", []) == "B cell"
    assert derive_answer("cell_type", ["no facts here", "none"], "label", []) is None
    assert derive_answer("unknown_family", steps, "label", []) is None


def test_planted_site_is_found_at_its_position():
    site = "AGATAAGG"
    pfm = [[0.91 if b == base else 0.03 for base in "ACGT"] for b in site]
    score, pos, threshold = best_site("C" * 30 + site + "C" * 30, pfm)
    assert pos == 31 and score > threshold
    _, rc_pos, _ = best_site("C" * 30 + "CCTTATCT" + "C" * 30, pfm)  # reverse complement
    assert rc_pos == 31


def test_offline_backends_report_each_call(kb):
    rec = _records()["cell-ok-b"]
    seen, replies = [], []
    OfflineTeacher(kb, on_call=seen.append).run([Call([], {"attempt": 0}, rec)],
                                                lambda c, r: replies.append(r))
    trace = json.loads(replies[0].text)
    assert len(seen) == 1 and len(trace["steps"]) >= 3
    checked = []
    ctx = {"family": "cell_type", "answer_type": "multiple_choice", "choices": rec["choices"],
           "steps": trace["steps"]}
    EvidenceChecker("solution").run([Call([], {}, ctx)], lambda c, r: checked.append(r.text))
    assert checked == ["<solution> B cell</solution>"]


def test_unreadable_problem_becomes_an_empty_trace(kb):
    rec = _records()["cell-ok-b"] | {"prompt": "no cell data"}
    replies = []
    OfflineTeacher(kb).run([Call([], {}, rec)], lambda c, r: replies.append(json.loads(r.text)))
    assert replies[0]["steps"] == [] and "no <cell> data" in replies[0]["note"]


def test_translation_picks_the_encoded_protein(kb):
    rec = _records()["d2p-ok"]
    trace = write_rationale(rec, kb)
    assert "Reading frame +1 translates to a peptide with 100% identity to option A." in trace["steps"]
    assert derive_answer(rec["family"], trace["steps"], rec["answer_type"], rec["choices"]) == rec["answer"]


def test_a_short_gene_set_trace_cites_each_marker_without_the_type_the_question_names(kb):
    rec = _records()["cell-ok-mono"]
    full, short = write_rationale(rec, kb), write_rationale(rec, kb, style="short")
    assert short["steps"] == ["Marker LYZ is at rank 1.", "Marker CD14 is at rank 2."]
    assert "Marker LYZ of Monocyte is at rank 1 in the cell sentence." in full["steps"]
    for trace in (full, short):
        assert derive_answer(rec["family"], trace["steps"], rec["answer_type"], rec["choices"]) == "LYZ, CD14"


def test_long_disease_options_are_named_by_letter_in_the_steps_and_read_back(kb):
    rec = _records()["rd-ok"]
    longer = [c.replace(" (OMIM", ", with a long descriptive name (OMIM") for c in rec["choices"]]
    rec = rec | {"choices": longer, "answer": longer[0]}
    steps = write_rationale(rec, kb, style="short")["steps"]
    assert any("[option A]" in s for s in steps) and not any("syndrome" in s for s in steps)
    assert derive_answer(rec["family"], steps, rec["answer_type"], rec["choices"]) == longer[0]


def test_instruction_derivation_is_the_computation():
    from tasks.annotate.derivations import derive

    assert derive({"kind": "cell_gene_present", "gene": "CD3D", "rank": None}, "no")[-1] == \
        "CD3D does not appear anywhere in the sentence."
    with pytest.raises(KeyError, match="no derivation"):
        derive({"kind": "new_kind"}, "x")


def test_gene_names_with_spaces_are_read_back():
    steps = ["Reading.", "Knockdown of DPH2 changes NB 1, and knocking down NB 1 left 3-unfolded protein "
             "response not differentially expressed in the training data.",
             "Across 963 training knockdowns, 3-unfolded protein response was differentially expressed in 33% of them."]
    assert derive_answer("perturb_de", steps, "yes_no", []) == "no"


def test_offline_cache_keys_follow_the_code(kb):
    assert OfflineTeacher(kb).model.startswith("knowledge-grounded-")
    assert OfflineTeacher(kb).model == OfflineTeacher(kb).model
