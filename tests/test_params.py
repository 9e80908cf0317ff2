import pytest

from tasks.common.params import ParamsError, load_params, parse_params
from tests.conftest import PROJECT


def test_project_params_parse_for_every_profile():
    import yaml

    raw = yaml.safe_load((PROJECT / "params.yaml").read_text())
    for profile in ("default", "smoke", "small", "gpu"):
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


def _unset(value) -> bool:
    return value is None or value == [] or value == {}


def _drift(model_cls, default, data: dict, path: str) -> list[str]:
    """Keys whose params.yaml value differs from the code's default (None/empty defaults mean unset)."""
    from pydantic import BaseModel
    from pydantic_core import PydanticUndefined

    out = []
    for key, value in data.items():
        if key == "profiles":
            continue
        field = model_cls.model_fields[key]
        if default is not None:
            code = getattr(default, key)
        elif field.default_factory is not None:
            code = field.default_factory()
        else:
            code = None if field.default is PydanticUndefined else field.default
        sub = next((c for c in (*getattr(field.annotation, "__args__", ()), field.annotation)
                    if isinstance(c, type) and issubclass(c, BaseModel)), None)
        if sub is not None and isinstance(value, dict):
            out += _drift(sub, code if isinstance(code, BaseModel) else None, value, f"{path}{key}.")
        elif not _unset(code) and code != value:
            out.append(f"{path}{key}: code {code!r}, params.yaml {value!r}")
    return out


def test_params_yaml_repeats_the_code_defaults_it_does_not_override():
    """One default per key: params.yaml's own values (profiles aside) equal the code's default,
    unless the code leaves the key unset (None or empty), which params.yaml then sets."""
    import yaml

    from tasks.common.params import Params

    raw = yaml.safe_load((PROJECT / "params.yaml").read_text())
    drift = []
    for name, section in raw.items():
        field = Params.model_fields[name]
        model = next(c for c in (*getattr(field.annotation, "__args__", ()), field.annotation)
                     if isinstance(c, type) and hasattr(c, "model_fields"))
        drift += _drift(model, None, section, f"{name}.")
    assert not drift, "params.yaml and tasks/common/params.py disagree:\n" + "\n".join(drift)


def test_unknown_profile_names_the_known_ones():
    import yaml

    raw = yaml.safe_load((PROJECT / "params.yaml").read_text())
    raw["base"]["profile"] = "smok"
    with pytest.raises(ParamsError, match=r"base.profile: unknown profile 'smok' \(known: default, "):
        parse_params(raw)


def test_missing_section_names_it(tmp_path):
    (tmp_path / "params.yaml").write_text("base: {seed: 0}\n")
    with pytest.raises(ParamsError, match="sft: missing section"):
        load_params(tmp_path / "params.yaml", require=("sft",))
