"""Every error Homeostat raises on purpose, in one tree.

    HomeostatError                 base of everything below
    ├── ConfigError                settings file or environment is invalid (names key and problem)
    ├── RuleFileError              a rule or plan file is invalid (carries file:line:column)
    ├── PayloadError               an inbound payload is malformed (names the field)
    ├── AuthError                  an inbound request failed authentication
    ├── OperatorError              an operator's request could not be carried out
    │   ├── NotFoundError          no such resource workflow or episode
    │   └── RefusedError           the workflow refused it (not awaiting approval, answered ...)
    │       └── ForbiddenError     the identity may not do it (not one of the step's approvers)
    ├── LimitError                 an inbound request is over a size or count limit (names it)
    ├── OverloadedError            a capacity bound is reached for now; retrying later may work
    ├── DependencyError            a required external component is missing or unreachable
    │   └── EmbeddedServerError    the embedded Temporal dev server failed to start or stop
    └── RemediationError           a side effect failed
        ├── TransientError         retrying may help (timeouts, 5xx, 429, unreachable hosts)
        └── PermanentError         retrying cannot help (syntax error, missing playbook, 4xx)

A module's own errors, raised and caught within its layer, derive from ``HomeostatError``
too (``rules.alerts.DuplicateLabelsError``: a Prometheus evaluation failed as Prometheus
fails it).

Third-party exceptions are translated into this tree at the module that talks to the
third party; nothing outside that module catches a library's own exception types.
"""

from __future__ import annotations

from dataclasses import dataclass


class HomeostatError(Exception):
    """Base class of every error Homeostat raises deliberately."""


class ConfigError(HomeostatError):
    """The settings are invalid; the message names the key and the problem."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SourcePosition:
    """A position in a text file, 1-based like editors show it."""

    path: str
    line: int
    column: int

    def __str__(self) -> str:
        """Render as ``file:line:column``."""
        return f"{self.path}:{self.line}:{self.column}"


class RuleFileError(HomeostatError):
    """A rule or remediation file is invalid at a known position."""

    def __init__(self, position: SourcePosition, message: str) -> None:
        """Remember where the problem is and what it is."""
        super().__init__(f"{position}: {message}")
        self.position = position
        self.message = message


class PayloadError(HomeostatError):
    """An inbound payload is malformed; ``field`` names the offending field."""

    def __init__(self, field: str, message: str) -> None:
        """Remember the offending field and what is wrong with it."""
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class AuthError(HomeostatError):
    """An inbound request did not authenticate."""


class OperatorError(HomeostatError):
    """An operator's request (approve, silence, reset ...) could not be carried out."""


class NotFoundError(OperatorError):
    """The resource has no workflow, or the episode no remediation workflow."""


class RefusedError(OperatorError):
    """The workflow refused the request; the message says why."""


class ForbiddenError(RefusedError):
    """The authenticated identity may not do this (it is not one of the step's approvers)."""


class LimitError(HomeostatError):
    """An inbound request is over a limit; ``setting`` names the setting that sets it."""

    def __init__(self, setting: str, message: str) -> None:
        """Remember which limit was exceeded and by what."""
        super().__init__(f"{message} (limit: {setting})")
        self.setting = setting
        self.message = message


class OverloadedError(HomeostatError):
    """A capacity bound shared by all requests is reached; the same request may work later."""


class DependencyError(HomeostatError):
    """A component Homeostat needs is missing or unreachable."""


class EmbeddedServerError(DependencyError):
    """The embedded Temporal dev server could not be started or stopped."""


class RemediationError(HomeostatError):
    """A remediation side effect failed."""


class TransientError(RemediationError):
    """A failure that a retry may fix."""


class PermanentError(RemediationError):
    """A failure that no retry can fix."""
