"""Pre-visit completeness checks: for every appointment of a day, is the patient's paperwork complete,
and if not, what exactly must the front desk ask for?

Modules, in the order a run uses them: :mod:`.config` (rules, payers, export formats),
:mod:`.appointments` (CSV and FHIR in), :mod:`.matching` (appointment to record), :mod:`.rules`
(findings), :mod:`.runner` (one run end to end, snapshots and reminders), :mod:`.worklist` (HTML, PDF,
CSV, JSON out). Nothing here imports Prefect; ``flows/previsit.py`` wraps the runner.
"""
