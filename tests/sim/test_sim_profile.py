"""Profile: defaults, strict loading, presets, YAML."""

from __future__ import annotations

from pathlib import Path

import pytest

from stellwerk.sim import PRESETS, Outage, Profile, ProfileError, load_profile


def test_defaults_are_the_fast_preset() -> None:
    assert PRESETS["fast"] == Profile(name="fast")
    assert Profile().output_tokens == 16
    assert Profile().latency_ms == 0


def test_presets_exist_and_down_always_fails() -> None:
    assert set(PRESETS) == {"fast", "realistic", "flaky", "slow", "down"}
    down = Profile.preset("down")
    assert down.error_rate == 1.0 and down.error_statuses == (503,)
    with pytest.raises(ProfileError, match="unknown preset 'nope'"):
        Profile.preset("nope")


def test_from_dict_rejects_unknown_keys_with_their_names() -> None:
    with pytest.raises(ProfileError, match=r"unknown key\(s\) \['eror_rate'\]"):
        Profile.from_dict({"eror_rate": 0.5})


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"error_rate": 1.5}, "error_rate: expected a value between 0.0 and 1.0"),
        ({"error_rate": "high"}, "error_rate: expected a number"),
        ({"output_tokens": 0}, "output_tokens"),
        ({"output_tokens": 2.5}, "output_tokens: expected an integer"),
        ({"error_statuses": []}, "error_statuses: expected at least one"),
        ({"error_statuses": [200]}, "error_statuses"),
        ({"models": "gpt"}, "models: expected a list"),
        ({"outages": [{"start": 1, "duration": 5, "every": 5}]}, "outages.every"),
        ({"outages": [{"start": 1, "mode": "explode"}]}, "outages.mode"),
        ({"outages": [{"begin": 1}]}, r"outages: unknown key\(s\) \['begin'\]"),
    ],
)
def test_invalid_values_name_the_key(data: dict[str, object], message: str) -> None:
    with pytest.raises(ProfileError, match=message):
        Profile.from_dict(data)


def test_updated_keeps_other_fields_and_parses_outages() -> None:
    base = Profile(latency_ms=20, seed=7)
    new = base.updated({"error_rate": 1.0, "outages": [{"start": 5, "duration": 2, "mode": "hang"}]})
    assert new.latency_ms == 20 and new.seed == 7 and new.error_rate == 1.0
    assert new.outages == (Outage(start=5, duration=2, mode="hang"),)
    assert base.error_rate == 0.0


def test_to_dict_round_trips() -> None:
    profile = Profile(models=("a", "b"), outages=(Outage(start=1, duration=2, every=10),))
    assert Profile.from_dict(profile.to_dict()) == profile


def test_yaml_file_with_preset_base(tmp_path: Path) -> None:
    path = tmp_path / "chaos.yaml"
    path.write_text("preset: realistic\nerror_rate: 0.25\noutages:\n  - {start: 30, duration: 10, every: 60}\n")
    profile = load_profile(str(path))
    assert profile.name == "chaos"
    assert profile.latency_ms == PRESETS["realistic"].latency_ms
    assert profile.error_rate == 0.25
    assert profile.outages[0].every == 60


def test_yaml_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("hang_rate: 2\n")
    with pytest.raises(ProfileError, match=r"bad\.yaml: hang_rate"):
        Profile.from_yaml(path)


def test_load_profile_by_name() -> None:
    assert load_profile("flaky") is PRESETS["flaky"]
    with pytest.raises(ProfileError, match="unknown preset"):
        load_profile("flakey")


def test_example_yaml_lists_every_field_with_its_default() -> None:
    import dataclasses

    import stellwerk.sim

    path = Path(stellwerk.sim.__file__).parent / "example-profile.yaml"
    text = path.read_text()
    for f in dataclasses.fields(Profile):
        assert f"\n{f.name}:" in text, f.name
    assert Profile.from_yaml(path) == Profile(name="example")
