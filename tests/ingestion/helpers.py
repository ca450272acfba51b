"""What the ingestion tests share beside their fixtures (in this folder's conftest.py): the test modules
import these, never each other."""

from __future__ import annotations

# The tenant of the tests that run posts through the real downstream processes.
TENANT = "ingest-pipeline"
