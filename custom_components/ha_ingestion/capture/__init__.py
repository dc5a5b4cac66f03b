"""The data path: remote events to the local bus, gaps recovered from the remote's history.

One responsibility per module:

- `events.py`: what a remote event becomes locally (sanitized) and what input is rejected;
- `selflink.py`: when the remote is this instance, what must never be captured;
- `gaps.py`: the open gap and the closed gap records;
- `backfill.py`: bounded, adaptive history requests; exactly-once selection;
- `history_session.py`: the backfill's own connection (an oversize reply never costs the live link);
- `checkpoint.py`: the durable "complete up to" state (Home Assistant's `Store`);
- `capture.py`: the orchestrator tying them to the supervisor.
"""

from .capture import EventCapture
from .gaps import GapRecord

__all__ = ["EventCapture", "GapRecord"]
