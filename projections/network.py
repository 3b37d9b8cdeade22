"""The network view: every clinic's metrics and the totals across the network.

What it stores: one row with the network's totals, kept exactly like a
clinic's (dashboards.py: every increment and every programme contribution
is applied to the programme's clinic *and* to the network), and its
rendered dashboard. A read joins that row with the clinic rows, which are
already rendered, so it costs one small query and no arithmetic.
"""

from __future__ import annotations

#: The network row's key in its one-row table.
NETWORK_ROW = 1


def network_body(clinic_dashboards: list[str], totals: str) -> str:
    """The network view's JSON body from the stored JSON of every clinic's
    dashboard (in clinic_id order) and of the network's: joined, not re-parsed."""
    return f'{{"clinics":[{",".join(clinic_dashboards)}],"totals":{totals}}}'
