"""Secrets: named credentials stored encrypted in the catalog (``project.secrets``).

- :mod:`fti.secrets.keys`: the secret key (``FTI_SECRET_KEY`` or ``$FTI_HOME/secret.key``), Fernet.
- :mod:`fti.secrets.store`: :class:`Secrets` (set, get, list, delete, rotate_key) and the grant
  that restricts a pipeline run to the secrets it declared.
- :mod:`fti.secrets.masking`: hiding values in logs and error messages.
- :mod:`fti.secrets.records`: the catalog rows (tokens, never values).
"""
