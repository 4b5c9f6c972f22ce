"""Appointment exports in: both CSV shapes, FHIR bundles, and every way an export arrives broken.

Errors must name the row (as a spreadsheet numbers it) and the column, and never the value itself.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from frontdesk.checks.appointments import AppointmentFileError, load_appointments
from frontdesk.checks.config import load_checks
from tests.conftest import ROOT
from tests.fixtures.appointments import TIMEZONE, VISIT_DATE, generate

SAMPLES = ROOT / "tests" / "fixtures" / "samples"
TZ = ZoneInfo(TIMEZONE)
TODAY = date(2026, 3, 2)


@pytest.fixture(scope="module")
def config():  # type: ignore[no-untyped-def]
    return load_checks(ROOT / "config" / "checks.yaml").config.appointments


def load(path: Path, config, **kw):  # type: ignore[no-untyped-def]
    return load_appointments(path, config, TZ, today=TODAY, **kw)


REPORT_HEADER = "Appt ID,Appt Date,Appt Time,Provider,MRN,Patient Name,DOB,Referring NPI,Status\n"


def write(tmp_path: Path, text: str, name: str = "appts.csv", encoding: str = "utf-8") -> Path:
    p = tmp_path / name
    p.write_bytes(text.encode(encoding))
    return p


@pytest.mark.parametrize("name,fmt", [("appointment_report.csv", "csv:appointment_report"),
                                      ("ehr_export.csv", "csv:ehr_export"),
                                      ("appointments_fhir.json", "fhir")])
def test_samples_read_the_same_appointments(config, name: str, fmt: str) -> None:  # type: ignore[no-untyped-def]
    parsed = load(SAMPLES / name, config)
    assert parsed.format == fmt
    assert not parsed.problems
    assert parsed.skipped_status == 1  # one cancelled visit
    got = {a.key: (a.start, a.provider, a.date_of_birth, a.mrn, a.referring_npi) for a in parsed.appointments}
    reference = {a.key: (a.start, a.provider, a.date_of_birth, a.mrn, a.referring_npi)
                 for a in load(SAMPLES / "appointment_report.csv", config).appointments}
    assert got == reference
    assert len(got) == 9


def test_generated_exports_agree_across_shapes(tmp_path: Path, config) -> None:  # type: ignore[no-untyped-def]
    sc = generate(60, seed=11, extra_days=4, cancelled=3, distractors=0)
    truth = {c.appointment_id: c for c in sc.cases if c.status != "cancelled"}
    for path in (sc.write_appointment_report(tmp_path / "a.csv"), sc.write_ehr_export(tmp_path / "b.csv"),
                 sc.write_fhir(tmp_path / "c.json")):
        parsed = load(path, config)
        assert parsed.skipped_status == 3
        assert {a.key for a in parsed.appointments} == set(truth)
        for a in parsed.appointments:
            c = truth[a.key]
            assert (a.start, a.provider, a.date_of_birth, a.mrn, a.referring_npi) == (
                c.start, c.provider, c.date_of_birth, c.mrn, c.referring_npi), path.name
            assert a.first_name == c.first_name and a.last_name == c.last_name


def test_names_times_and_two_digit_years(tmp_path: Path, config) -> None:  # type: ignore[no-untyped-def]
    p = write(tmp_path, REPORT_HEADER
              + '1,3/3/2026,9:05 am,Dr. Kim,,"García-López, José María",7/4/45,,Scheduled\n'
              + '2,03/03/2026,14:30,Dr. Kim,007,"O\'Neil, Mary-Kate",12/31/2020,,Checked In\n')
    a, b = load(p, config).appointments
    assert a.start == datetime(2026, 3, 3, 9, 5)
    assert (a.first_name, a.last_name) == ("José María", "García-López")
    assert a.date_of_birth == date(1945, 7, 4)  # a two-digit birth year is never in the future
    assert b.start == datetime(2026, 3, 3, 14, 30)
    assert (b.first_name, b.last_name, b.mrn) == ("Mary-Kate", "O'Neil", "007")


def test_semicolons_bom_and_header_case(tmp_path: Path, config) -> None:  # type: ignore[no-untyped-def]
    text = ("\ufeffappt id;APPT DATE;Appt Time;provider;Patient Name;dob\n"
            "9;03/03/2026;8:00 AM;Dr. Kim;Doe, Jane;01/02/1980\n")
    parsed = load(write(tmp_path, text), config)
    assert [a.key for a in parsed.appointments] == ["9"]


def test_utf16_export_is_read(tmp_path: Path, config) -> None:  # type: ignore[no-untyped-def]
    text = REPORT_HEADER + '5,03/03/2026,8:00 AM,Dr. Kim,,"Núñez, Zoë",01/02/1980,,Scheduled\n'
    parsed = load(write(tmp_path, text, encoding="utf-16"), config)
    assert parsed.appointments[0].last_name == "Núñez"


def test_fhir_timezone_offsets_become_practice_time(tmp_path: Path, config) -> None:  # type: ignore[no-untyped-def]
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "Patient", "id": "p", "name": [{"family": "Doe", "given": ["Jane"]}],
                      "birthDate": "1980-01-02"}},
        {"resource": {"resourceType": "Appointment", "id": "a1", "status": "booked",
                      "start": "2026-03-03T15:00:00Z",
                      "participant": [{"actor": {"reference": "Patient/p"}},
                                      {"actor": {"reference": "Practitioner/x", "display": "Dr. Kim"}}]}},
    ]}
    p = tmp_path / "b.json"
    p.write_text(json.dumps(bundle))
    (a,) = load(p, config).appointments
    assert a.start == datetime(2026, 3, 3, 9, 0)  # 15:00 UTC is 09:00 in Chicago (CST)
    assert a.provider == "Dr. Kim" and a.key == "a1"


# ---- malformed files ------------------------------------------------------------------------------

def test_empty_file(tmp_path: Path, config) -> None:  # type: ignore[no-untyped-def]
    for content in ("", "\n\n", "\ufeff"):
        with pytest.raises(AppointmentFileError, match="the file is empty"):
            load(write(tmp_path, content), config)


def test_header_only_is_a_day_without_appointments(tmp_path: Path, config) -> None:  # type: ignore[no-untyped-def]
    parsed = load(write(tmp_path, REPORT_HEADER), config)
    assert parsed.appointments == [] and parsed.problems == []


def test_missing_columns_are_named(tmp_path: Path, config) -> None:  # type: ignore[no-untyped-def]
    text = "Appt ID,Appt Date,Provider,Patient Name\n1,03/03/2026,Dr. Kim,\"Doe, Jane\"\n"
    with pytest.raises(AppointmentFileError) as e:
        load(write(tmp_path, text), config)
    msg = str(e.value)
    assert "row 1 (header)" in msg and "'Appt Time'" in msg and "'DOB'" in msg
    assert "appointment_report" in msg


def test_unknown_layout(tmp_path: Path, config) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(AppointmentFileError, match="row 1 \\(header\\): missing column"):
        load(write(tmp_path, "a,b,c\n1,2,3\n"), config)


BAD_ROWS = (REPORT_HEADER
            + '1,03/03/2026,8:00 AM,Dr. Kim,,"Doe, Jane",01/02/1980,,Scheduled\n'     # row 2: good
            + '2,02/30/2026,8:10 AM,Dr. Kim,,"Roe, Rick",03/04/1970,,Scheduled\n'     # row 3: no 30 February
            + '3,03/03/2026,8:20 AM,Dr. Kim,,"Poe, Edgar",1975-13-01,,Scheduled\n'    # row 4: bad DOB
            + '4,03/03/2026,25:00,Dr. Kim,,"Moe, Mia",05/06/1990,,Scheduled\n'        # row 5: bad time
            + '5,03/03/2026,8:40 AM,,,"Loe, Lou",05/06/1991,,Scheduled\n'             # row 6: no provider
            + '6,03/03/2026,8:50 AM,Dr. Kim,,Koe Kim,05/06/1992,,Scheduled\n'         # row 7: not "Last, First"
            + '7,03/03/2026,9:00 AM,Dr. Kim,,"Joe, Jo",05/06/1993,,Scheduled,extra\n'  # row 8: extra value
            + '8,03/03/2026,9:10 AM,Dr. Kim,,"Hoe, Hal",,,Scheduled\n'                # row 9: no DOB
            + '9,03/03/2026,9:20 AM,Dr. Kim,,"Good, Gail",07/08/1960,,Scheduled\n')   # row 10: good


def test_bad_rows_are_all_named_by_row_and_column(tmp_path: Path, config) -> None:  # type: ignore[no-untyped-def]
    p = write(tmp_path, BAD_ROWS)
    with pytest.raises(AppointmentFileError) as e:
        load(p, config)
    msg = str(e.value)
    assert msg.startswith(f"{p}: 7 bad rows")
    expected = [
        "row 3, column 'Appt Date': not a date (expected MM/DD/YYYY)",
        "row 4, column 'DOB': not a date (expected MM/DD/YYYY)",
        "row 5, column 'Appt Time': not a time",
        "row 6, column 'Provider': is empty",
        "row 7, column 'Patient Name': not a name in the form 'Last, First'",
        "row 8, column '10 (no header)': 10 values but the header has 9 columns",
        "row 9, column 'DOB': is empty",
    ]
    for line in expected:
        assert line in msg
    assert [str(p_.where) for p_ in e.value.problems] == [f"row {n}" for n in (3, 4, 5, 6, 7, 8, 9)]
    # The values themselves stay out of the message: they are patient data.
    for value in ("Roe", "Poe", "1975-13-01", "Koe Kim", "Hoe"):
        assert value not in msg


def test_skip_bad_rows_keeps_the_good_ones(tmp_path: Path, config) -> None:  # type: ignore[no-untyped-def]
    parsed = load(write(tmp_path, BAD_ROWS), config, skip_bad_rows=True)
    assert [a.key for a in parsed.appointments] == ["1", "9"]
    assert len(parsed.problems) == 7


def test_wrong_encoding_names_row_and_column(tmp_path: Path, config) -> None:  # type: ignore[no-untyped-def]
    text = (REPORT_HEADER
            + '1,03/03/2026,8:00 AM,Dr. Kim,,"Doe, Jane",01/02/1980,,Scheduled\n'
            + '2,03/03/2026,8:10 AM,Dr. Kim,,"Núñez, José",03/04/1970,,Scheduled\n'
            + '3,03/03/2026,8:20 AM,Dr. Kim,,"Roe, Rick",03/04/1971,,Scheduled\n')
    p = write(tmp_path, text, encoding="cp1252")
    with pytest.raises(AppointmentFileError) as e:
        load(p, config)
    msg = str(e.value)
    assert "row 3, column 'Patient Name': not utf-8 text" in msg
    assert "Windows-1252" in msg and "Núñez" not in msg
    parsed = load(p, config, skip_bad_rows=True)
    assert [a.key for a in parsed.appointments] == ["1", "3"]


def test_configured_encoding_reads_windows_exports(tmp_path: Path, config) -> None:  # type: ignore[no-untyped-def]
    text = REPORT_HEADER + '2,03/03/2026,8:10 AM,Dr. Kim,,"Núñez, José",03/04/1970,,Scheduled\n'
    p = write(tmp_path, text, encoding="cp1252")
    (a,) = load(p, config.model_copy(update={"encoding": "cp1252"})).appointments
    assert a.last_name == "Núñez"


def test_ehr_export_bad_timestamp(tmp_path: Path, config) -> None:  # type: ignore[no-untyped-def]
    text = ("appointment_id,start_time,provider_name,patient_first_name,patient_last_name,patient_birth_date\n"
            "1,2026-03-03 8am,Dr. Kim,Jane,Doe,1980-01-02\n"
            "2,2026-03-03T08:15:00,Dr. Kim,Jo,Roe,02/01/1980\n")
    with pytest.raises(AppointmentFileError) as e:
        load(write(tmp_path, text), config)
    msg = str(e.value)
    assert "row 2, column 'start_time': not a date and time" in msg
    assert "row 3, column 'patient_birth_date': not a date (expected YYYY-MM-DD)" in msg


def test_missing_file_and_folder(tmp_path: Path, config) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(AppointmentFileError, match="file not found"):
        load(tmp_path / "nope.csv", config)
    with pytest.raises(AppointmentFileError, match="is a folder"):
        load(tmp_path, config)


@pytest.mark.parametrize("text,expected", [
    ('{"resourceType": "Bundle", "entry": [', "not valid JSON (line 1, column"),
    ('{"resourceType": "Patient"}', "expected a FHIR Bundle"),
    ('[1, 2]', "expected a FHIR Bundle"),
    ('{"resourceType": "Bundle", "entry": 5}', "element 'entry' is not a list"),
])
def test_fhir_file_errors(tmp_path: Path, config, text: str, expected: str) -> None:  # type: ignore[no-untyped-def]
    p = tmp_path / "b.json"
    p.write_text(text)
    with pytest.raises(AppointmentFileError, match=expected.replace("(", "\\(")):
        load(p, config)


def test_fhir_bad_entries_named_by_entry_and_element(tmp_path: Path, config) -> None:  # type: ignore[no-untyped-def]
    patient = {"resourceType": "Patient", "id": "p", "name": [{"family": "Doe", "given": ["Jane"]}],
               "birthDate": "1980-01-02"}
    prac = {"actor": {"reference": "Practitioner/x", "display": "Dr. Kim"}}
    good = {"resourceType": "Appointment", "id": "ok", "status": "booked", "start": "2026-03-03T09:00:00-06:00",
            "participant": [{"actor": {"reference": "Patient/p"}}, prac]}
    entries = [
        {"resource": patient},
        {"resource": dict(good, id="a", start="tomorrow")},                                        # entry 2
        {"resource": dict(good, id="b", participant=[{"actor": {"reference": "Patient/zz"}}, prac])},  # entry 3
        {"resource": dict(good, id="c", participant=[{"actor": {"reference": "Patient/p"}}])},        # entry 4
        {"resource": dict(good, id="d", start=None)},                                               # entry 5
        {"resource": good},                                                                          # entry 6
        {"resource": {"resourceType": "Patient", "id": "q", "birthDate": "1980"}},
        {"resource": dict(good, id="e", participant=[{"actor": {"reference": "Patient/q"}}, prac])},   # entry 8
    ]
    p = tmp_path / "b.json"
    p.write_text(json.dumps({"resourceType": "Bundle", "entry": entries}))
    with pytest.raises(AppointmentFileError) as e:
        load(p, config)
    msg = str(e.value)
    assert msg.startswith(f"{p}: 5 bad entries")
    for line in ("entry 2 (Appointment), element 'start': not a date and time",
                 "entry 3 (Appointment), element 'participant[0].actor.reference': names a Patient that is not in the bundle",
                 "entry 4 (Appointment), element 'participant': no Practitioner participant with a name",
                 "entry 5 (Appointment), element 'start': is missing",
                 "entry 8 (Appointment) -> Patient, element 'birthDate': not a full date (YYYY-MM-DD)"):
        assert line in msg
    parsed = load(p, config, skip_bad_rows=True)
    assert [a.key for a in parsed.appointments] == ["ok"]
    assert parsed.appointments[0].start.date() == VISIT_DATE


def test_duplicate_appointment_ids(tmp_path: Path, config) -> None:  # type: ignore[no-untyped-def]
    text = (REPORT_HEADER
            + '7,03/03/2026,8:00 AM,Dr. Kim,,"Doe, Jane",01/02/1980,,Scheduled\n'
            + '8,03/03/2026,8:10 AM,Dr. Kim,,"Roe, Rick",03/04/1970,,Scheduled\n'
            + '7,03/03/2026,8:20 AM,Dr. Kim,,"Poe, Edgar",03/04/1971,,Scheduled\n')
    with pytest.raises(AppointmentFileError, match="row 4: the same appointment ID as row 2"):
        load(write(tmp_path, text), config)
    assert [a.key for a in load(write(tmp_path, text), config, skip_bad_rows=True).appointments] == ["7", "8"]
