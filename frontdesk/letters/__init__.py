"""Letters, patient statements, batch mailing and pre-filled forms.

Plain functions only (no Prefect): ``flows/mail.py`` wraps them for scheduled runs, and the CLI and
tests call them directly. Modules:

* :mod:`~frontdesk.letters.envelope`: the #10 double-window placement spec the layout follows;
* :mod:`~frontdesk.letters.kinds`: which template each kind of mail uses, and sample data;
* :mod:`~frontdesk.letters.addresses`: is an address complete enough to mail (``usaddress``);
* :mod:`~frontdesk.letters.layout`: what shows through the windows, address sheets, duplex padding;
* :mod:`~frontdesk.letters.statements`: statements from a ledger CSV export, with aging;
* :mod:`~frontdesk.letters.filing`: rendering, converting and filing letters and statements;
* :mod:`~frontdesk.letters.mail`: the mail batch (one print-ready PDF, manifest, exactly once);
* :mod:`~frontdesk.letters.prefill`: a form from ``templates/forms/`` filled with what the record knows.
"""
