"""The mirror path: remote entities as local entities, recorded natively by the local recorder.

One responsibility per module:

- `mirror.py`: the orchestrator: follows the link and hands each part below its work;
- `choice.py`: what to mirror (`MirrorChoice`, `MIRROR_DOMAINS`, the filter, the prefix);
- `updates.py`: `subscribe_entities` messages applied to the mirrors, at once or in slices, and
  every mirror unavailable when the link drops;
- `local_entities.py`: the local entities: identity in the registry, creation per platform,
  the bad-input skips, confirmed removals;
- `fallback.py`: a remote without `subscribe_entities` (`get_states`, then `state_changed`);
- `past_states.py`: the state changes recovered after an outage as the mirrors' recorded history
  (`recorder_history.py`: its recorder tasks);
- `gap_statistics.py`: the long-term statistics of mirrored sensors for each closed gap;
- `local_recorder.py`: what that fill reads from and writes to the local recorder;
- `entity.py`: one mirrored entity (the remote's state and attributes; `NativeMirror`, the base of
  the native class of each controllable domain in the top-level `<domain>.py`);
- `control.py`: service calls on mirrors forwarded to the remote entity (`RemoteControl`);
- `platform.py`: the one platform setup of every mirrored domain (`switch.py`, `cover.py` & co.
  re-export it; `sensor.py`, `binary_sensor.py` and `button.py` add mirrors beside their own).

Transport and diffs live in the engine (`client/entities.py`); which entities: `EntityFilter`.
"""

from .choice import MIRROR_DOMAINS, MirrorChoice, default_prefix, mirror_filter
from .mirror import EntityMirror

__all__ = ["MIRROR_DOMAINS", "EntityMirror", "MirrorChoice", "default_prefix", "mirror_filter"]
