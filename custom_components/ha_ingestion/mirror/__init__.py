"""The mirror path: remote entities as local entities, recorded natively by the local recorder.

One responsibility per module:

- `entity.py`: one mirrored entity (the remote's state and attributes, read-only);
- `mirror.py`: the orchestrator: `subscribe_entities` updates to entities, availability with the
  link, confirmed removals, the bad-input skips;
- `platform.py`: the one platform setup of every mirrored domain (`switch.py`, `cover.py` & co.
  re-export it; `sensor.py`, `binary_sensor.py` and `button.py` add mirrors beside their own).

Transport and diffs live in the engine (`client/entities.py`); which entities: `EntityFilter`.
"""

from .mirror import MIRROR_DOMAINS, EntityMirror, MirrorChoice

__all__ = ["MIRROR_DOMAINS", "EntityMirror", "MirrorChoice"]
