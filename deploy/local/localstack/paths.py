"""Where the stack keeps its state (one ignored folder) and its artifacts (a cache shared by clones)."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
DEPLOY = REPO / "deploy" / "local"
# Data, logs and pid files: everything the running stack writes.
STATE = Path(os.environ.get("SHOP_STACK_STATE", REPO / ".stack"))
# What a component's server user cannot reach inside STATE (a checkout in root's private home) lives
# here instead, linked from STATE, one folder per stack.
OUTSIDE_STATE = Path(os.environ.get("SHOP_STACK_OUTSIDE", "/var/lib/shop-stack"))
# Downloaded and built components, keyed by a hash of their build inputs, reused by fresh clones.
CACHE = Path(os.environ.get("SHOP_STACK_CACHE", Path.home() / ".cache" / "shop-stack"))
# The broker's TLS material and the CA clients trust (deploy/tls/issue.sh): docker compose mounts the
# same folder, so that .env.example's KAFKA_SSL_CA_LOCATION serves both stacks.
TLS = REPO / ".stack" / "tls"
