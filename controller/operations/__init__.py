"""What the terminal and the HTTP API share, knowing nothing of either.

Each module answers with typed values, and the JSON form of them is built once
(``encoding``): ``homeostat ... --json`` prints it and the ``/v1`` routes serve it.
``commands/`` renders these for the terminal, ``api/`` as JSON.

- The write side (``identity``, ``steering``): approvals, silences, pauses and resets of a
  resource's workflow, each made by an authenticated ``Identity`` and recorded under its
  name.
- ``views``: resources listed and shown from Temporal visibility (search attributes and
  the resource workflow's memo), so neither needs a worker.
- ``timeline``: one function from workflow history events to an episode's or a
  resource's timeline, in domain terms; ``histories`` fetches the events.
- ``replay``: today's workflow code against recorded histories.
"""
