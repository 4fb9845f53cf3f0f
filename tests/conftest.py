"""Shared test configuration: services that CI must have, and the platform harness."""

from __future__ import annotations

import os
import sys
from pathlib import Path

# Test helpers (harness.py) live next to this file.
sys.path.insert(0, str(Path(__file__).parent))

IN_CI = os.environ.get("CI", "").lower() == "true"
