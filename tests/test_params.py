import pytest

from tasks.common.params import ParamsError, load_params, parse_params
from tests.conftest import PROJECT


def test_project_params_parse_for_every_profile():
    import yaml

    raw = yaml.safe_load((PROJECT / "params.yaml").read_text())
    for profile in ("default", "smoke"):
        raw["base"]["profile"] = profile
        params = parse_params(raw)
        assert params.base.profile == profile
        assert params.textify.cells.top_k == 200


def test_profile_overrides_only_its_keys():
    raw = {"base": {"profile": "smoke"},
           "textify": {"cells": {"source": "a.h5ad", "top_k": 50}, "dna": {"sources": ["x"]},
                       "proteins": {"sources": ["y"]},
                       "profiles": {"smoke": {"cells": {"top_k": 5}}}}}
    cells = parse_params(raw).textify.cells
    assert (cells.top_k, cells.source) == (5, "a.h5ad")
    raw["base"]["profile"] = "default"
    assert parse_params(raw).textify.cells.top_k == 50


@pytest.mark.parametrize("raw, message", [
    ({"base": {"seeed": 1}}, "params.yaml: base.seeed: unknown key"),
    ({"base": {"seed": "abc"}}, "params.yaml: base.seed: Input should be a valid integer"),
    ({"nonsense": {}}, "params.yaml: nonsense: unknown key"),
])
def test_bad_keys_name_the_key(raw, message):
    with pytest.raises(ParamsError) as err:
        parse_params(raw)
    assert str(err.value).startswith(message)


def test_nested_unknown_key_names_full_path(tmp_path):
    text = (PROJECT / "params.yaml").read_text().replace("top_k: 200", "top_kk: 200")
    (tmp_path / "params.yaml").write_text(text)
    with pytest.raises(ParamsError, match=r"textify\.cells\.top_kk: unknown key"):
        load_params(tmp_path / "params.yaml")
