"""Payer IDs beside the payer names, from ``config/payers.yaml`` (the same gazetteer the card reader and
the pre-visit checks use, so a payer is spelled and recognised one way everywhere)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from frontdesk.exceptions import ConfigError


def _norm(name: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9]+", " ", name.casefold()).split())


@dataclass(frozen=True)
class Payer:
    name: str
    payer_id: str | None
    member_id: re.Pattern[str] | None
    mbi: bool = False  # Medicare: member IDs are MBIs

    def member_id_ok(self, member_id: str) -> bool:
        """Does the member ID (as stored: upper case, no spaces or dashes) fit this payer's format?"""
        from frontdesk.billable import check_mbi

        if self.mbi:
            return check_mbi(member_id) is None
        return self.member_id is None or self.member_id.fullmatch(member_id) is not None


class PayerDirectory:
    def __init__(self, payers: list[Payer], aliases: dict[str, Payer]) -> None:
        self.payers = payers
        self._aliases = aliases

    def find(self, name: object) -> Payer | None:
        if not isinstance(name, str) or not name.strip():
            return None
        return self._aliases.get(_norm(name))


def load_payers(path: Path) -> PayerDirectory:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ConfigError(f"{path}: payers file not found") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read payers file ({exc.__class__.__name__})") from None
    entries = data.get("payers") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise ConfigError(f"{path}: expected 'payers:' with a list of payers")
    payers: list[Payer] = []
    aliases: dict[str, Payer] = {}
    for n, e in enumerate(entries, 1):
        if not isinstance(e, dict) or not isinstance(e.get("name"), str):
            raise ConfigError(f"{path}: payers entry {n}: needs a name")
        if e.get("kind", "payer") != "payer":
            continue
        pid = e.get("payer_id")
        if pid is not None and not re.fullmatch(r"[A-Za-z0-9]{2,80}", str(pid)):
            raise ConfigError(f"{path}: payers entry {n} ({e['name']}): payer_id must be letters and digits")
        spec = e.get("member_id")
        pattern = None
        mbi = isinstance(spec, str) and spec.strip().lower() in ("mbi", "medicare", "medicare_mbi")
        if isinstance(spec, str) and not mbi:
            try:
                pattern = re.compile(spec)
            except re.error:
                raise ConfigError(f"{path}: payers entry {n} ({e['name']}): member_id is not a valid pattern") from None
        payer = Payer(e["name"], str(pid) if pid is not None else None, pattern, mbi)
        payers.append(payer)
        for alias in [e["name"], *(e.get("aliases") or [])]:
            aliases.setdefault(_norm(str(alias)), payer)
    return PayerDirectory(payers, aliases)


@lru_cache(maxsize=4)
def _cached(path: str, mtime: float) -> PayerDirectory:
    return load_payers(Path(path))


def payers_for(path: Path) -> PayerDirectory:
    """The directory, re-read when the file changes (staff edit it while Frontdesk runs)."""
    try:
        mtime = Path(path).stat().st_mtime
    except OSError:
        raise ConfigError(f"{path}: payers file not found") from None
    return _cached(str(path), mtime)
