"""What the terminal and the HTTP API share, knowing nothing of either.

The write side (``identity``, ``steering``): approvals, silences, pauses and resets of a
resource's workflow, each made by an authenticated ``Identity`` and recorded under its
name. ``commands/`` renders these for the terminal, ``api/`` as JSON.
"""
