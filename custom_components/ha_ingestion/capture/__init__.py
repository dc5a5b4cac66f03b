"""The data path: remote events to the local bus, gaps recovered from the remote's history.

One responsibility per module:

- `events.py`: what a remote event becomes locally (sanitized) and what input is rejected;
- `selflink.py`: when the remote is this instance, what must never be captured;
- `live.py`: the hot path: per event check, self-link filter, bounded queue, drain;
- `gaps.py`: the open gap and the closed gap records;
- `recovery.py`: the gap path: the open gap's state machine, backfill, commit wait, repairs;
- `backfill.py`: bounded, adaptive history requests; exactly-once selection;
- `history_session.py`: the backfill's own connection (an oversize reply never costs the live link);
- `state.py`: what the live and gap paths share (settings, progress, totals);
- `checkpoint.py`: the durable "complete up to" state (Home Assistant's `Store`), (de)serialised;
- `stats.py`: the frozen totals capture publishes (the coordinator reads them);
- `capture.py`: the orchestrator: builds the paths, owns their lifecycle.
"""

from .capture import EventCapture
from .gaps import GapRecord
from .recovery import ISSUE_BACKFILL
from .stats import CaptureStats

__all__ = ["ISSUE_BACKFILL", "CaptureStats", "EventCapture", "GapRecord"]
