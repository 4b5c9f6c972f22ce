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


def test_two_configurations_loaded_at_once_in_threads_each_get_their_own_settings(tmp_path: Path) -> None:
    """A process serving two practices' configurations (or two tests in threads) loads each one's own
    inbox, never the other's: the file being loaded is not shared state."""
    from concurrent.futures import ThreadPoolExecutor

    from frontdesk.settings import load_settings

    files = {}
    for name in ("north", "south"):
        f = tmp_path / f"{name}.yaml"
        f.write_text(f"inbox: {tmp_path / name / 'inbox'}\n", encoding="utf-8")
        files[name] = f

    def load(name: str) -> tuple[str, Path]:
        return name, load_settings(files[name]).inbox

    import sys

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads take turns often, as on a busy server
    try:
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(load, ["north", "south"] * 100))
    finally:
        sys.setswitchinterval(interval)
    assert all(inbox == tmp_path / name / "inbox" for name, inbox in results)
