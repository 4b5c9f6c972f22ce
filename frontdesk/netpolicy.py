"""What Frontdesk will talk to beyond this machine, and on what terms.

Why: anyone who can reach a Prefect API without credentials can start flow runs and read their
parameters and results; a Dask scheduler on plain ``tcp://`` accepts pickled work from anyone on the
network. On one machine everything stays on 127.0.0.1 (the server Frontdesk starts binds there). Across
machines the API must ask for credentials (Prefect's ``PREFECT_API_AUTH_STRING`` basic auth, or an API
key in front of a reverse proxy) and Dask must use ``tls://``. docs/security.md and docs/scale-out.md say
how to set them up.
"""

from __future__ import annotations

import ipaddress
import logging
import os
from collections.abc import Mapping
from urllib.parse import urlsplit

from frontdesk.exceptions import ConfigError

log = logging.getLogger("frontdesk.netpolicy")


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_prefect_api(url: str, env: Mapping[str, str] | None = None) -> None:
    """Refuse a Prefect API on another machine that this client has no credentials for."""
    env = os.environ if env is None else env
    parts = urlsplit(url)
    if is_loopback(parts.hostname):
        return
    if not (env.get("PREFECT_API_AUTH_STRING") or env.get("PREFECT_API_KEY")):
        raise ConfigError(
            f"the Prefect API at {parts.hostname} is on another machine and no credentials are configured "
            "(set PREFECT_API_AUTH_STRING to the server's basic-auth user:password, or PREFECT_API_KEY for "
            "a proxy that wants one); see docs/security.md")
    if parts.scheme != "https":
        log.warning("the Prefect API at %s is reached over plain http: credentials and flow data cross the "
                    "network unencrypted; put it behind TLS (docs/security.md)", parts.hostname)


def check_dask_address(address: str) -> None:
    """Refuse a Dask scheduler on another machine over plain tcp://: it would run anyone's pickles."""
    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    if parts.scheme != "tls" and not is_loopback(parts.hostname):
        raise ConfigError(f"prefect.dask_address {parts.hostname}: a scheduler on another machine must be "
                          "reached over tls:// (Dask TLS certificates); see docs/security.md")
