"""Settings: one pydantic model, defaults from ``config/frontdesk.yaml``.

Precedence, highest first: keyword arguments, ``FRONTDESK_*`` environment variables (nested with ``__``),
the YAML file given by ``--config`` / ``FRONTDESK_CONFIG``, then ``config/frontdesk.yaml`` in the home folder.
Relative paths resolve against the home folder, so the same config works whatever the working directory.
"""

from __future__ import annotations

import os
from contextvars import ContextVar
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from pydantic_settings.exceptions import SettingsError

from frontdesk.exceptions import ConfigError

_PACKAGE_HOME = Path(__file__).resolve().parent.parent


def home() -> Path:
    """The folder relative paths are taken from: FRONTDESK_HOME, else the project checkout, else cwd."""
    env = os.environ.get("FRONTDESK_HOME")
    if env:
        return Path(env).resolve()
    if (_PACKAGE_HOME / "config" / "frontdesk.yaml").is_file():
        return _PACKAGE_HOME
    return Path.cwd()


class S3Settings(BaseModel):
    bucket: str = ""
    prefix: str = ""
    region: str = "us-east-1"
    endpoint_url: str | None = None
    sse: Literal["AES256", "aws:kms"] = "AES256"
    kms_key_id: str | None = None
    max_attempts: int = 5
    multipart_threshold_mb: int = 8


class StorageSettings(BaseModel):
    backend: Literal["local", "s3"] = "local"
    root: Path = Path("var/storage")
    spool: Path = Path("var/spool")
    s3: S3Settings = Field(default_factory=S3Settings)


class Practice(BaseModel):
    name: str = "Riverside Family Medicine"
    address_lines: list[str] = Field(default_factory=lambda: ["120 Main Street", "Springfield, IL 62701"])
    phone: str = "(217) 555-0142"
    logo: Path | None = None


class ExtractionSettings(BaseModel):
    template_match_threshold: float = 0.55
    low_confidence_threshold: float = 0.80
    tesseract_timeout: float = 60.0
    read_timeout: float = 60.0  # whole-document limit; a looping PDF is refused, not waited on
    read_limit_seconds: float = Field(default=300.0, gt=0)  # the reading process is killed after this long
    read_memory_mb: int = Field(default=1536, ge=0)  # address-space limit of a reading process (0: none)
    max_file_mb: float = Field(default=200.0, ge=0)  # a larger file is refused before it is read (0: no limit)
    scan_page_seconds: float = 8.0  # a scan may take read_timeout plus this much per page
    max_scan_pages: int = 100  # a longer scan is refused: split the stack
    max_image_megapixels: float = 60.0  # a page image larger than this is refused before it is decoded
    tessdata_cache: Path | None = None  # slim OCR language data is built here (default: ~/.cache/frontdesk)
    # Scanned stacks: a page with a QR, Code 128 or Code 39 barcode reading one of these starts a new
    # document (and is dropped); blank pages split documents only when asked, since duplex scans have blank backs.
    separator_codes: list[str] = Field(default_factory=lambda: ["PATCHT"])
    split_on_blank_pages: bool = False
    # Cards and letters: a statistical spaCy model (package name or folder) to build on; empty: the
    # rule-based pipeline on blank English, which is all the tests and accuracy bars need.
    spacy_model: str | None = None

    @field_validator("spacy_model")
    @classmethod
    def _model_installed(cls, value: str | None) -> str | None:
        from extractors import spacy_model

        value = spacy_model.normalise(value)
        why = spacy_model.problem(value)
        if why is not None:
            raise ValueError(why)
        return value


class WatchSettings(BaseModel):
    """The watched folder. Areas left empty sit beside the inbox, so a claim is a rename on one
    filesystem (atomic); the ledger stays local because SQLite must not live on a network share."""

    processing: Path | None = None  # default: <inbox>/../processing
    archive: Path | None = None  # default: <inbox>/../archive
    failed: Path | None = None  # default: <inbox>/../failed
    ledger: Path = Path("var/watch/ledger.sqlite")
    after_filing: Literal["archive", "delete"] = "archive"
    stable_seconds: float = Field(default=5.0, ge=0)
    incomplete_grace_seconds: float = Field(default=600.0, ge=0)  # unparseable but stable: take it, fail it
    polling: bool = False  # network shares (SMB/NFS) send no inotify events
    poll_interval_seconds: float = Field(default=2.0, gt=0)
    rescan_seconds: float = Field(default=300.0, gt=0)
    recursive: bool = False
    dispatch: Literal["inline", "deployment"] = "inline"
    batch_size: int = Field(default=100, ge=1)  # files per intake flow run (a burst is one run)
    workers: int = Field(default=0, ge=0)  # processes for inline/local work; 0: one per core
    max_attempts: int = Field(default=5, ge=1)
    ignore: list[str] = Field(default_factory=list)  # extra glob patterns, on top of the built-in ones


class PrefectSettings(BaseModel):
    """How Frontdesk meets Prefect: which server, which deployments, which schedules."""

    api_url: str | None = None  # else PREFECT_API_URL, else `frontdesk serve` starts a local server
    local_server_port: int = 4200
    work_pool: str = "frontdesk"
    intake_deployment: str = "intake-document/intake"
    review_deployment: str = "review/review"
    review: bool = True  # a needs_review document waits in the Prefect UI for a person
    review_timeout_hours: float = Field(default=72.0, gt=0)
    mail_cron: str = "0 16 * * 1-5"
    timezone: str = "America/Chicago"
    limit: int | None = None  # concurrent flow runs for `frontdesk serve` (default: the cores)
    task_runner: Literal["thread", "dask"] = "thread"  # dask: a batch's documents over a Dask cluster
    dask_address: str | None = None  # Dask scheduler (tcp://host:8786); None: a local cluster, one per core


class ChecksSettings(BaseModel):
    """Pre-visit completeness checks (``frontdesk check``, the previsit_check flow).

    The rules themselves are in ``rules_file``; these are the places and times a practice sets once.
    """

    rules_file: Path = Path("config/checks.yaml")
    appointments_dir: Path = Path("var/appointments")  # where the scheduler's daily export is dropped
    output_dir: Path = Path("var/worklists")  # worklists hold patient data: keep them on a private disk
    schedule: str = "0 17 * * 1-5"  # cron: 17:00 on weekdays, checking the next business day
    timezone: str | None = None  # IANA name, e.g. America/Chicago; default: prefect.timezone
    chromium: str | None = None  # browser for the worklist PDF; default: chromium on PATH


class LettersSettings(BaseModel):
    """Rendering letters and statements to PDF (``frontdesk letters``, the mail batch)."""

    convert_workers: int | None = Field(default=None, ge=1, le=8)  # LibreOffice processes side by side
    convert_timeout_seconds: float = Field(default=180.0, gt=0)  # per LibreOffice call (one per chunk)


class RemitTo(BaseModel):
    name: str
    address_lines: list[str]


class StatementSettings(BaseModel):
    """Patient statements built from the billing system's ledger export."""

    minimum_balance: Decimal = Field(default=Decimal("5.00"), ge=0)  # accounts owing this much or less get none
    due_days: int = Field(default=30, ge=0, le=365)  # the due date is the statement date plus this
    remit_to: RemitTo | None = None  # where payments go; default: the practice's name and address
    payment_methods: list[str] = Field(default_factory=lambda: [
        "By phone: call us and pay by card",
        "By mail: send a check with the top part of this statement",
        "In person at the front desk (cash, check or card)",
    ])


class MailSettings(BaseModel):
    """The print-ready mail batch (``frontdesk mail``)."""

    duplex: bool = True  # printed on both sides: every piece starts on the front of a new sheet
    output_dir: Path = Path("var/mail")  # print copies of each batch; they hold patient data
    lock_minutes: float = Field(default=60.0, gt=0)  # a crashed mail run's lock is taken over after this


class BillingProvider(BaseModel):
    """The practice as it bills: what 2010AA of an 837P and box 25/33 of a CMS-1500 carry. Empty by
    default on purpose: a claim must never go out under a made-up NPI or tax ID."""

    name: str = ""  # legal name the payer has on file (default: practice.name)
    npi: str = ""  # group (type 2) NPI, 10 digits with a valid check digit
    tax_id: str = ""  # EIN, 9 digits (dashes allowed)
    taxonomy: str = ""  # provider taxonomy code, e.g. 207Q00000X (family medicine); optional
    street: str = ""
    city: str = ""
    state: str = ""
    zip: str = ""  # ZIP+4: 5010 claims need all nine digits for the billing provider
    phone: str = ""
    contact_name: str = ""  # whom the clearinghouse calls about a batch (1000A PER)


class ClearinghouseSettings(BaseModel):
    """The clearinghouse that carries X12 files to payers. Frontdesk writes to ``outbox`` and reads
    responses (271, 999, 277CA) from ``inbox``; the transfer itself (SFTP, portal upload) is the
    clearinghouse's client."""

    name: str = "CLEARINGHOUSE"
    submitter_id: str = ""  # the ID the clearinghouse gave the practice (ISA06, GS02, 1000A)
    receiver_id: str = ""  # the clearinghouse's own ID (ISA08, GS03, 1000B)
    id_qualifier: str = "ZZ"
    usage: Literal["T", "P"] = "T"  # T test, P production: switch to P only after the clearinghouse's test
    outbox: Path = Path("var/clearinghouse/outbox")
    inbox: Path = Path("var/clearinghouse/inbox")
    inbox_cron: str = "*/10 * * * *"  # `frontdesk serve` reads the inbox this often (clearinghouse-inbox flow)


class EligibilitySettings(BaseModel):
    days_ahead: int = Field(default=2, ge=0, le=30)  # send 270s this many business days before the visit
    schedule: str = "0 7 * * 1-5"  # cron for the eligibility flow
    valid_days: int = Field(default=30, ge=1, le=365)  # a 271 older than this no longer counts for a visit


class PrinterOffset(BaseModel):
    """How far one printer puts the page from where it should be, in points (1/72 inch): positive x
    moves print to the right, positive y moves it up. Measured with the alignment page."""

    x: float = Field(default=0.0, ge=-72, le=72)
    y: float = Field(default=0.0, ge=-72, le=72)


class ClaimsSettings(BaseModel):
    """Eligibility (270/271) and claims (837P, CMS-1500): ``frontdesk eligibility``, ``frontdesk claims``."""

    billing: BillingProvider = Field(default_factory=BillingProvider)
    clearinghouse: ClearinghouseSettings = Field(default_factory=ClearinghouseSettings)
    eligibility: EligibilitySettings = Field(default_factory=EligibilitySettings)
    payers_file: Path = Path("config/payers.yaml")
    output_dir: Path = Path("var/claims")  # CMS-1500 PDFs and previews: they hold patient data
    printers: dict[str, PrinterOffset] = Field(default_factory=lambda: {"default": PrinterOffset()})
    place_of_service: str = "11"  # 11 office
class ConsoleSettings(BaseModel):
    """The staff console (``frontdesk console``). It listens on this machine only unless told otherwise;
    a practice server puts it behind a reverse proxy with TLS (docs/console.md)."""

    host: str = "127.0.0.1"
    port: int = Field(default=8180, ge=1, le=65535)
    idle_minutes: float = Field(default=15.0, gt=0)  # signed off after this long without a request
    session_hours: float = Field(default=10.0, gt=0)  # a session ends after a working day whatever happens
    login_attempts: int = Field(default=5, ge=1)  # failed sign-ins per user name or client ...
    login_window_minutes: float = Field(default=15.0, gt=0)  # ... within this window before a pause
    secure_cookies: bool = True  # cookies only over HTTPS; off only for http://127.0.0.1 without a proxy
    review_deadline_hours: float = Field(default=72.0, gt=0)  # a document waiting longer is shown overdue


_LOADING: ContextVar[Path | None] = ContextVar("frontdesk_settings_file", default=None)
"""The YAML file the :func:`load_settings` call running in this thread (or task) reads. pydantic-settings
builds its sources in a class method, so the file must reach it beside the call; a context variable
keeps two threads loading two configurations apart, where a class attribute would let them meet."""


class _YamlSource(PydanticBaseSettingsSource):
    def __init__(self, settings_cls: type[BaseSettings], path: Path | None) -> None:
        super().__init__(settings_cls)
        self.path = path

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:  # pragma: no cover
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        if self.path is None or not self.path.is_file():
            return {}
        try:
            data = yaml.safe_load(self.path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{self.path}: not valid YAML ({exc.__class__.__name__})") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{self.path}: expected a mapping of settings")
        return data


class Settings(BaseSettings):
    """Everything a practice configures. Paths are absolute after loading."""

    # hide_input_in_errors: a value that fails validation is never echoed in the error's text (a value put
    # in the wrong setting may be a patient's); validation_reason() words the message users see.
    model_config = SettingsConfigDict(env_prefix="FRONTDESK_", env_nested_delimiter="__", extra="ignore",
                                      hide_input_in_errors=True)

    inbox: Path = Path("var/inbox")
    database_url: str = "sqlite:///var/frontdesk.db"
    # A lost database connection (PostgreSQL restarted) is tried again on a new one for this long before
    # the run stops (exit code 7) with the files left in processing.
    database_reconnect_seconds: float = Field(default=30.0, ge=0)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    forms_dirs: list[Path] = Field(default_factory=lambda: [Path("templates/forms")])
    letters_dir: Path = Path("templates/letters")
    fields_file: Path = Path("config/fields.yaml")
    practice: Practice = Field(default_factory=Practice)
    extraction: ExtractionSettings = Field(default_factory=ExtractionSettings)
    checks: ChecksSettings = Field(default_factory=ChecksSettings)
    watch: WatchSettings = Field(default_factory=WatchSettings)
    prefect: PrefectSettings = Field(default_factory=PrefectSettings)
    letters: LettersSettings = Field(default_factory=LettersSettings)
    statements: StatementSettings = Field(default_factory=StatementSettings)
    mail: MailSettings = Field(default_factory=MailSettings)
    claims: ClaimsSettings = Field(default_factory=ClaimsSettings)
    console: ConsoleSettings = Field(default_factory=ConsoleSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _YamlSource(settings_cls, _LOADING.get()))

    def resolved(self, base: Path) -> Settings:
        """Return a copy with every relative path made absolute against ``base``."""

        def fix(p: Path) -> Path:
            return p if p.is_absolute() else (base / p).resolve()

        data = self.model_copy(deep=True)
        data.inbox = fix(data.inbox)
        data.storage.root = fix(data.storage.root)
        data.storage.spool = fix(data.storage.spool)
        data.forms_dirs = [fix(p) for p in data.forms_dirs]
        data.letters_dir = fix(data.letters_dir)
        data.fields_file = fix(data.fields_file)
        data.checks.rules_file = fix(data.checks.rules_file)
        data.checks.appointments_dir = fix(data.checks.appointments_dir)
        data.checks.output_dir = fix(data.checks.output_dir)
        data.watch.ledger = fix(data.watch.ledger)
        data.mail.output_dir = fix(data.mail.output_dir)
        data.claims.payers_file = fix(data.claims.payers_file)
        data.claims.output_dir = fix(data.claims.output_dir)
        data.claims.clearinghouse.outbox = fix(data.claims.clearinghouse.outbox)
        data.claims.clearinghouse.inbox = fix(data.claims.clearinghouse.inbox)
        for area in ("processing", "archive", "failed"):
            value = getattr(data.watch, area)
            if value is not None:
                setattr(data.watch, area, fix(value))
        if data.practice.logo is not None:
            data.practice.logo = fix(data.practice.logo)
        if data.database_url.startswith("sqlite:///") and not data.database_url.startswith("sqlite:////"):
            rel = data.database_url.removeprefix("sqlite:///")
            if rel and rel != ":memory:":
                data.database_url = "sqlite:///" + str(fix(Path(rel)))
        return data


def validation_reason(exc: ValidationError) -> str:
    """``where: why`` for the first error of ``exc``, without the value that failed: pydantic's own text
    for a custom check (``Value error, ...``) may quote it, and a value typed into the wrong setting or
    form field may be a patient's name or date of birth. The value is cut out wherever it appears."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "value"
    msg = str(first.get("msg", "not valid"))
    given = first.get("input")
    if isinstance(given, str | int | float) and not isinstance(given, bool) and len(str(given)) >= 2:
        msg = msg.replace(str(given), "(the value given)")
    return f"{where}: {msg}"


def load_settings(config_file: Path | str | None = None, **overrides: Any) -> Settings:
    """Load settings from YAML, environment and overrides; raise ConfigError with a readable reason."""
    base = home()
    path = Path(config_file) if config_file else None
    if path is None and os.environ.get("FRONTDESK_CONFIG"):
        path = Path(os.environ["FRONTDESK_CONFIG"])
    if path is None:
        path = base / "config" / "frontdesk.yaml"
    elif not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    token = _LOADING.set(path)
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(f"{path}: setting {validation_reason(exc)}") from None
    except SettingsError as exc:  # a value that is not even JSON where a list or mapping is wanted
        raise ConfigError(f"{path}: {str(exc).splitlines()[0]}") from None
    finally:
        _LOADING.reset(token)
    return settings.resolved(base)


@lru_cache(maxsize=1)
def default_settings() -> Settings:
    return load_settings()


def areas_paths(inbox: Path, watch: WatchSettings) -> list[Path]:
    """Where processing, archive and failed are for this inbox, without creating them."""
    parent = Path(inbox).resolve().parent
    return [Path(watch.processing or parent / "processing"), Path(watch.archive or parent / "archive"),
            Path(watch.failed or parent / "failed")]
