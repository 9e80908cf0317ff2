import pytest

from tasks.common.answers import (choose, claimed_text, claimed_value, extract_answer, is_correct,
                                  json_omim_id, normalise_binary, normalise_gene_set, normalise_label)


@pytest.mark.parametrize("completion, expected", [
    ("<think>r</think><answer>B</answer>", "B"),
    ("<think>r</think>\n<ANSWER>\n  CD14+ Monocyte \n</Answer>", "CD14+ Monocyte"),
    ("< answer >yes</ answer >", "yes"),
    ("<answer>first</answer> then <answer>second</answer>", "second"),
])
def test_extract_is_tolerant_of_case_and_whitespace(completion, expected):
    assert extract_answer(completion) == expected


@pytest.mark.parametrize("completion", [
    "The answer is B.", "<answer>B", "B</answer>", "<answer>   </answer>", "<answers>B</answers>", "",
])
def test_extract_is_strict_about_the_tag(completion):
    assert extract_answer(completion) is None


def test_extract_with_other_tag_and_chat_messages():
    assert extract_answer("<solution>x</solution>", tag="solution") == "x"
    assert extract_answer("<answer>x</answer>", tag="solution") is None
    chat = [{"role": "assistant", "content": "<think>a</think><answer>up</answer>"}]
    assert extract_answer(chat) == "up"


def test_label_normalisation_keeps_the_signs_of_cell_types():
    assert normalise_label("  CD4+/CD45RA+/CD25-   Naive T. ") == "cd4+/cd45ra+/cd25- naive t"
    assert is_correct("cd14+ monocyte", "CD14+ Monocyte", "label")
    assert not is_correct("CD14- Monocyte", "CD14+ Monocyte", "label")


@pytest.mark.parametrize("text, index", [
    ("B", 1), ("b.", 1), ("(B)", 1), ("B) TP53", 1), ("B. tp53", 1), ("TP53", 1), ("tp53.", 1),
    ("A", 0), ("E", None), ("B. BRCA1", None), ("KRAS", None), ("Answer B", None),
])
def test_multiple_choice_by_letter_or_text(text, index):
    assert choose(text, ["BRCA1", "TP53", "EGFR"]) == index


def test_multiple_choice_correctness_uses_the_choice_text():
    choices = ["B cell", "T cell", "NK cell"]
    assert is_correct("A", "B cell", "multiple_choice", choices)
    assert is_correct("b cell", "B cell", "multiple_choice", choices)
    assert not is_correct("B", "B cell", "multiple_choice", choices)  # letter B is "T cell"
    with pytest.raises(ValueError, match="not one of the choices"):
        is_correct("A", "Monocyte", "multiple_choice", choices)


def test_yes_no_and_direction():
    assert normalise_binary("Yes.") == "yes" and normalise_binary("FALSE") == "no"
    assert normalise_binary("Up-regulated") == "up" and normalise_binary("down") == "down"
    assert normalise_binary("maybe") is None
    assert is_correct("YES", "yes", "yes_no") and not is_correct("no", "yes", "yes_no")
    assert is_correct("upregulated", "up", "label")  # a label whose gold is up/down reads as one
    assert is_correct("upregulated", "up", "yes_no")
    assert normalise_binary("Yes, clearly") == "yes" and normalise_binary("no idea") is None
    assert not is_correct("no", "N", "label") and is_correct("n", "N", "label")  # a letter is a label


def test_gene_sets_ignore_order_case_and_separators():
    assert normalise_gene_set("cd3d; CD3E\nil7r,") == {"CD3D", "CD3E", "IL7R"}
    assert is_correct("IL7R cd3d, CD3E", "CD3D, CD3E, IL7R", "gene_set")
    assert not is_correct("CD3D, CD3E", "CD3D, CD3E, IL7R", "gene_set")


def test_biomni_json_is_compared_on_the_omim_id():
    gold = '{"disease_name": "Marfan syndrome", "OMIM_ID": "154700"}'
    assert is_correct('{"disease_name": "MFS", "OMIM_ID": "OMIM:154700"}', gold, "json")
    assert is_correct('```json\n{"omim_id": 154700}\n```', gold, "json")
    assert not is_correct('{"disease_name": "Marfan syndrome", "OMIM_ID": "154705"}', gold, "json")
    assert not is_correct("Marfan syndrome (154700)", gold, "json")  # not JSON
    assert not is_correct('{"disease_name": "Marfan syndrome"}', gold, "json")
    assert json_omim_id('{"OMIM_ID": "MIM #154700"}') == "154700"


def test_unknown_answer_type_is_an_error():
    with pytest.raises(ValueError, match="unknown answer_type"):
        claimed_value("x", "x", "number")


def test_claimed_text_for_soft_verifiers():
    assert claimed_text("C", "multiple_choice", ["GATA1", "SPI1", "CTCF"]) == "CTCF"
    assert claimed_text("Z", "multiple_choice", ["GATA1", "SPI1"]) is None
    assert claimed_text("NK cell", "label", []) == "NK cell"
    assert claimed_text(None, "label") is None
