"""Settings: YAML defaults, environment overrides, --config files, and readable errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from frontdesk.exceptions import ConfigError
from frontdesk.settings import load_settings


def test_defaults_come_from_the_yaml_and_paths_are_absolute() -> None:
    s = load_settings()
    assert s.storage.root.is_absolute() and s.storage.root.name == "storage"
    assert s.database_url.startswith("sqlite:////")
    assert all(p.is_absolute() for p in s.forms_dirs)
    assert s.practice.name


def test_environment_overrides_nested_values(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FRONTDESK_STORAGE__ROOT", str(tmp_path / "st"))
    monkeypatch.setenv("FRONTDESK_PRACTICE__NAME", "Lakeside Pediatrics")
    s = load_settings()
    assert s.storage.root == tmp_path / "st"
    assert s.practice.name == "Lakeside Pediatrics"


def test_config_file_overrides_defaults(tmp_path: Path) -> None:
    cfg = tmp_path / "site.yaml"
    cfg.write_text("practice:\n  name: Hilltop Clinic\n  phone: '(555) 201-0000'\nstorage:\n  backend: local\n")
    s = load_settings(cfg)
    assert s.practice.name == "Hilltop Clinic"


def test_bad_config_names_the_file_and_setting(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("storage:\n  backend: floppy\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml.*storage\.backend"):
        load_settings(cfg)
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "absent.yaml")
