"""The operator API under ``/v1``: routes for people and tools, with operator authentication.

``operator`` has the resource and episode routes (the write side here, the read views
from ``controller.operations``), ``slack`` the endpoint Slack sends button clicks to,
``auth`` the named operator tokens, ``bodies`` the bounded reading of request bodies after
authentication, and ``openapi`` the security schemes of every route, webhooks included.
Each router renders what ``controller.operations`` does as JSON; none of them talks to
Temporal by itself.
"""
