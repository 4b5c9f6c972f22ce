"""How fast are the console's pages with a practice's worth of records? Seeds the records database with
patients and documents (default 2,000 and 5,000, the issue's numbers), starts ``frontdesk console`` as a
real server, signs in, and requests each page from several clients at once, side by side with a plain
static response of the same server (``/static/console.css``: the same middleware, no database, no
template), so the table shows what each page costs on top of serving anything at all.

Prints, per page: requests, median, 95th percentile and worst time in ms, and the median as a ratio of
the static response's median measured in the same run.

Run: ``python bench/console_pages.py [--patients 2000] [--documents 5000] [--clients 4] [--requests 40]``.
(The issue's target: median under 150 ms, worst under 300 ms on this machine.)
"""

from __future__ import annotations

import argparse
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import httpx  # noqa: E402
from sqlalchemy import insert  # noqa: E402

FIRST = ["Ana", "Ben", "Carla", "Dev", "Eli", "Fatima", "Gus", "Hana", "Ivan", "Jo", "Kim", "Luis", "Mei", "Nia"]
LAST = ["Alvarez", "Brown", "Chen", "Diaz", "Evans", "Fischer", "Garcia", "Huang", "Ito", "Jones", "Khan",
        "Lopez", "Miller", "Nguyen", "Olsen", "Patel", "Quinn", "Rossi", "Smith", "Tanaka"]
PAYERS = ["Aetna", "Cigna", "Humana", "UnitedHealthcare", "Blue Cross Blue Shield", "Medicare"]


def seed(settings: Any, n_patients: int, n_docs: int, rnd: random.Random) -> dict[str, Any]:
    from frontdesk import users
    from frontdesk.db import open_database
    from frontdesk.db.models import (
        AuditEvent,
        Document,
        ExtractedField,
        Extraction,
        FlagRow,
        Letter,
        Patient,
        PatientField,
        StoredObjectRow,
    )
    from frontdesk.records import match_key

    db = open_database(settings)
    now = datetime.now(UTC)
    patients, fields = [], []
    for i in range(n_patients):
        first, last = rnd.choice(FIRST), rnd.choice(LAST) + ("" if i % 3 else f"-{i % 97}")
        dob = date(1940, 1, 1) + timedelta(days=rnd.randrange(0, 80 * 365))
        pid = f"pat-{i:012x}"
        patients.append({"id": pid, "match_key": match_key(first, last, dob), "first_name": first, "last_name": last,
                         "date_of_birth": dob, "created_at": now, "updated_at": now})
        for key, value in (("patient.first_name", first), ("patient.last_name", last),
                           ("patient.date_of_birth", dob.isoformat()), ("patient.phone", f"(217) 555-{i % 10000:04d}"),
                           ("patient.address.street", f"{i} Main St"), ("patient.address.city", "Springfield"),
                           ("patient.address.state", "IL"), ("patient.address.zip", "62701"),
                           ("insurance.primary.payer_name", rnd.choice(PAYERS)),
                           ("insurance.primary.member_id", f"W{rnd.randrange(10**8, 10**9)}")):
            fields.append({"patient_id": pid, "key": key, "value": value, "updated_at": now})
    docs, objects, extractions, ex_fields, flags, letters, events = [], [], [], [], [], [], []
    review_ids = []
    for j in range(n_docs):
        doc_id = f"doc-{j:016x}"
        r = rnd.random()
        outcome = "filed" if r < 0.72 else "needs_review" if r < 0.87 else "failed" if r < 0.95 else "needs_review"
        pid = patients[rnd.randrange(n_patients)]["id"] if outcome != "failed" and r < 0.95 else None
        received = now - timedelta(minutes=rnd.randrange(0, 60 * 24 * 120))
        docs.append({"id": doc_id, "sha256": f"{j:064x}", "size": 100_000, "state": "complete", "outcome": outcome,
                     "document_type": "insurance_card" if r >= 0.95 else "intake_form", "form": "new_patient_intake",
                     "method": "ocr", "pages": 2, "storage_prefix": f"documents/2026/11/{doc_id}",
                     "error": "the document matches no known form template" if outcome == "failed" else None,
                     "patient_id": pid, "received_at": received, "completed_at": received})
        objects.append({"key": f"documents/2026/11/{doc_id}/original.pdf", "role": "original", "sha256": "0" * 64,
                        "size": 100_000, "content_type": "application/pdf", "state": "stored", "document_id": doc_id,
                        "created_at": received, "stored_at": received})
        if outcome == "needs_review":
            review_ids.append(doc_id)
            ex_id = len(extractions) + 1
            extractions.append({"id": ex_id, "document_id": doc_id, "document_type": "intake_form",
                                "form": "new_patient_intake", "method": "ocr", "pages": 2, "created_at": received})
            for k, key in enumerate(["patient.first_name", "patient.last_name", "patient.date_of_birth",
                                     "patient.phone", "emergency_contact.name", "insurance.primary.payer_name",
                                     "insurance.primary.member_id", "insurance.primary.subscriber_name"]):
                ex_fields.append({"extraction_id": ex_id, "document_id": doc_id, "key": key,
                                  "value": None if key.endswith("member_id") else f"value {k}", "raw": None,
                                  "confidence": 0.95, "page": 1})
            for code, field, msg in (("missing", "insurance.primary.member_id", "Member ID is missing"),
                                     ("insurance.missing_info", None, "Primary insurance information is incomplete")):
                flags.append({"document_id": doc_id, "extraction_id": ex_id, "patient_id": pid, "code": code,
                              "severity": "error", "field": field, "message": msg, "status": "open",
                              "created_at": received})
            letters.append({"id": f"let-{j:012x}", "kind": "missing_insurance", "status": "pending", "patient_id": pid,
                            "document_id": doc_id, "created_at": received})
        for _ in range(4):
            events.append({"at": received, "actor": "seed", "action": "read", "object_type": "document",
                           "object_id": doc_id, "patient_id": pid})
    with db.begin() as s:
        for model, rows in ((Patient, patients), (PatientField, fields), (Document, docs), (StoredObjectRow, objects),
                            (Extraction, extractions), (ExtractedField, ex_fields), (FlagRow, flags),
                            (Letter, letters), (AuditEvent, events)):
            for k in range(0, len(rows), 2000):
                s.execute(insert(model), rows[k:k + 2000])
        users.add_user(s, "bench", "admin", "bench password 123")
    db.dispose()
    busiest = max(patients, key=lambda p: sum(1 for d in docs if d["patient_id"] == p["id"]))["id"]
    return {"review_doc": review_ids[len(review_ids) // 2], "patient": busiest, "reviews": len(review_ids)}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def measure(url: str, cookies: httpx.Cookies, pages: list[tuple[str, str, dict[str, str] | None]], clients: int,
            requests: int) -> dict[str, list[float]]:
    """Each page in turn, ``clients`` threads each making ``requests // clients`` requests of it."""
    times: dict[str, list[float]] = {}
    for name, path, form in pages:
        got: list[float] = []
        lock = threading.Lock()

        def work(path: str = path, form: dict[str, str] | None = form, name: str = name,
                 got: list[float] = got, lock: threading.Lock = lock) -> None:
            with httpx.Client(base_url=url, cookies=cookies, timeout=60) as c:
                for _ in range(max(1, requests // clients)):
                    t0 = time.perf_counter()
                    r = c.post(path, data=form) if form is not None else c.get(path)
                    dt = (time.perf_counter() - t0) * 1000
                    if r.status_code != 200:
                        raise SystemExit(f"{name}: HTTP {r.status_code}")
                    with lock:
                        got.append(dt)

        threads = [threading.Thread(target=work) for _ in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        times[name] = got
    return times


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--patients", type=int, default=2000)
    ap.add_argument("--documents", type=int, default=5000)
    ap.add_argument("--clients", type=int, default=4, help="concurrent browsers")
    ap.add_argument("--requests", type=int, default=40, help="requests per page (over all clients)")
    ap.add_argument("--seed", type=int, default=18)
    args = ap.parse_args(argv)

    from frontdesk.settings import load_settings

    with tempfile.TemporaryDirectory(prefix="frontdesk-bench-") as tmp_s:
        tmp = Path(tmp_s)
        settings = load_settings(storage={"root": tmp / "storage", "spool": tmp / "spool"},
                                 database_url=f"sqlite:///{tmp / 'frontdesk.db'}", inbox=tmp / "inbox")
        t0 = time.perf_counter()
        ids = seed(settings, args.patients, args.documents, random.Random(args.seed))
        print(f"seeded {args.patients} patients, {args.documents} documents ({ids['reviews']} waiting for review) "
              f"in {time.perf_counter() - t0:.1f} s")
        port = _free_port()
        env = dict(os.environ, FRONTDESK_STORAGE__ROOT=str(tmp / "storage"), FRONTDESK_STORAGE__SPOOL=str(tmp / "spool"),
                   FRONTDESK_DATABASE_URL=settings.database_url, FRONTDESK_INBOX=str(tmp / "inbox"),
                   FRONTDESK_CONSOLE__SECURE_COOKIES="false")
        exe = str(Path(sys.executable).with_name("frontdesk"))
        server = subprocess.Popen([exe, "console", "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, text=True)
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(600):
                try:
                    httpx.get(url + "/login", timeout=2)
                    break
                except httpx.HTTPError:
                    if server.poll() is not None:
                        raise SystemExit(f"console did not start: {server.stderr.read() if server.stderr else ''}") from None
                    time.sleep(0.2)
            with httpx.Client(base_url=url) as c:
                page = c.get("/login")
                token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
                r = c.post("/login", data={"csrf": token, "name": "bench", "password": "bench password 123"})
                home = c.get("/")
                csrf = re.search(r'name="csrf" value="([^"]+)"', home.text).group(1)  # type: ignore[union-attr]
                cookies = c.cookies
                assert r.status_code in (200, 303) and home.status_code == 200, "sign-in failed"
            pages: list[tuple[str, str, dict[str, str] | None]] = [
                ("static response (baseline)", "/static/console.css", None),
                ("Today", "/", None),
                ("Review queue", "/review", None),
                ("Review page", f"/review/{ids['review_doc']}", None),
                ("Patient page", f"/patients/{ids['patient']}", None),
                ("Search by name", "/search", {"csrf": csrf, "q": "Chen"}),
                ("Search by member ID", "/search", {"csrf": csrf, "q": "W5"}),
                ("Failed files", "/failed", None),
                ("Audit trail (admin)", "/admin/audit", None),
                ("Mail (all pending letters)", "/mail", None),
            ]
            measure(url, cookies, pages[:2], 1, 4)  # warm-up: templates compiled, caches filled
            times = measure(url, cookies, pages, args.clients, args.requests)
        finally:
            server.terminate()
            server.wait(timeout=30)

    base = statistics.median(times["static response (baseline)"])
    print(f"\n{args.clients} concurrent clients, {args.requests} requests per page, {os.cpu_count()} cores\n")
    print(f"{'page':<28} {'n':>4} {'median ms':>10} {'p95 ms':>8} {'worst ms':>9} {'x static':>9}")
    print("-" * 72)
    worst_med = worst_max = 0.0
    for name, got in times.items():
        got.sort()
        med, p95, mx = statistics.median(got), got[max(0, int(len(got) * 0.95) - 1)], got[-1]
        if not name.startswith("static"):
            worst_med, worst_max = max(worst_med, med), max(worst_max, mx)
        print(f"{name:<28} {len(got):>4} {med:>10.1f} {p95:>8.1f} {mx:>9.1f} {med / base:>9.1f}")
    print(f"\nslowest page median {worst_med:.1f} ms (target < 150), worst single request {worst_max:.1f} ms (target < 300)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
