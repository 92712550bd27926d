"""Pure value types shared by every layer: resources, observations, transitions.

Nothing here does I/O or reads a clock; every type is a frozen, slotted dataclass or a
``NewType``, safe to carry in Temporal payloads.
"""
