"""Insurance eligibility before the visit (X12 270/271) and claims after it (X12 837P, CMS-1500 on paper).

Layers, as everywhere in Frontdesk: the commands and the Prefect flow call the functions here; the pure
parts (X12 syntax, building and reading transactions, the paper form) know nothing of the database;
:mod:`frontdesk.claims.store` files batches and results in the records database and storage.
"""
