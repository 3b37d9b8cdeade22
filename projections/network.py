"""The network view: every clinic's metrics and the totals across the network.

What it stores: one row with the network's totals, kept exactly like a
clinic's (dashboards.py: every increment and every programme contribution
is applied to the programme's clinic *and* to the network), and its
rendered dashboard. A read joins that row with the clinic rows, which are
already rendered, so it costs one small query and no arithmetic.
"""

from __future__ import annotations

from typing import Any

#: The network row's key in its one-row table.
NETWORK_ROW = 1


def network_view(clinic_dashboards: list[dict[str, Any]], totals: dict[str, Any]) -> dict[str, Any]:
    """The network view from rendered clinic dashboards and the rendered totals."""
    return {
        "clinics": sorted(clinic_dashboards, key=lambda d: d["clinic_id"]),
        "totals": totals,
    }
