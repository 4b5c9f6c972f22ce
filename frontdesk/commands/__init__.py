"""Sub-commands of the ``frontdesk`` CLI, one module each."""
