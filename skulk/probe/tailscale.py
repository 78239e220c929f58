"""This machine's Tailscale state, read from `tailscale status --json` (never managed, only read).

Blocking (a subprocess with a timeout): call `read_status` from a worker thread.
"""

import ipaddress
import json
import os
import shutil
import subprocess
from typing import Any

STATUS_TIMEOUT_S = 3.0
# Nodes are often started with a minimal PATH (launchd, systemd, ssh) that misses these.
_KNOWN_LOCATIONS = ("/usr/local/bin/tailscale", "/opt/homebrew/bin/tailscale",
                    "/Applications/Tailscale.app/Contents/MacOS/Tailscale", "/usr/bin/tailscale")
_TAILNET_V4 = ipaddress.ip_network("100.64.0.0/10")


def not_running(installed: bool = False, backend_state: str | None = None) -> dict[str, Any]:
    return {"running": False, "installed": installed, "backendState": backend_state, "selfIp": None,
            "hostname": None, "dnsName": None, "tailnet": None, "version": None, "peerIps": []}


def tailscale_binary() -> str | None:
    found = shutil.which("tailscale")
    if found:
        return found
    return next((p for p in _KNOWN_LOCATIONS if os.access(p, os.X_OK)), None)


def _tailnet_ipv4(ips: Any) -> str | None:
    for raw in ips if isinstance(ips, list) else []:
        try:
            if isinstance(raw, str) and ipaddress.ip_address(raw) in _TAILNET_V4:
                return raw
        except ValueError:
            continue
    return None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def parse_status(raw: Any) -> dict[str, Any]:
    """The summary of a `tailscale status --json` document; missing or odd fields read as None."""
    if not isinstance(raw, dict):
        return not_running(installed=True)
    me = raw.get("Self") if isinstance(raw.get("Self"), dict) else {}
    dns_name = (_text(me.get("DNSName")) or "").rstrip(".") or None
    peers = raw.get("Peer") if isinstance(raw.get("Peer"), dict) else {}
    peer_ips = [ip for p in peers.values() if isinstance(p, dict) and (ip := _tailnet_ipv4(p.get("TailscaleIPs")))]
    backend = _text(raw.get("BackendState"))
    return {"running": backend == "Running", "installed": True, "backendState": backend,
            "selfIp": _tailnet_ipv4(me.get("TailscaleIPs")), "hostname": _text(me.get("HostName")),
            "dnsName": dns_name, "tailnet": dns_name.split(".", 1)[1] if dns_name and "." in dns_name else None,
            "version": _text(raw.get("Version")), "peerIps": sorted(peer_ips)}


def read_status(timeout: float = STATUS_TIMEOUT_S) -> dict[str, Any]:
    """This machine's Tailscale summary; `running` false when the CLI is missing, fails or hangs."""
    binary = tailscale_binary()
    if binary is None:
        return not_running()
    try:
        done = subprocess.run([binary, "status", "--json"], capture_output=True, timeout=timeout, check=False)
    except (OSError, subprocess.SubprocessError):
        return not_running(installed=True)
    try:
        raw = json.loads(done.stdout)
    except ValueError:
        return not_running(installed=True)
    # A stopped or logged-out daemon exits non-zero but may still print its BackendState.
    return parse_status(raw)
