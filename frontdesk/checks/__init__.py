"""Pre-visit completeness checks: for every appointment of a day, is the patient's paperwork complete,
and if not, what exactly must the front desk ask for?

Modules, in the order a run uses them: :mod:`.config` (rules, payer ID formats, export formats from
``config/checks.yaml`` and ``config/payers.yaml``), :mod:`.appointments` (CSV and FHIR in),
:mod:`.patients` (what the rules read about a patient, and where records come from), :mod:`.matching`
(appointment to record), :mod:`.rules` (findings), :mod:`.store` (records database: runs, changes since
the previous run, reminder letters), :mod:`.worklist` (HTML, PDF, CSV, JSON out), :mod:`.schedule`
(time zone, business days, cron) and :mod:`.runner`, which ties them together for one run.
Nothing here imports Prefect; ``flows/previsit.py`` wraps the runner's steps as tasks.
"""
