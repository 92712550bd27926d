"""Settings of what remediations reach: paging, ticketing, the CMDB, Ansible, commands, Slack."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pydantic

from controller.settings import values


class PagingSettings(values.Group):
    """PagerDuty Events API v2."""

    routing_key: pydantic.SecretStr | None = pydantic.Field(
        default=None, description="integration (routing) key; unset disables paging"
    )
    events_url: str = pydantic.Field(
        default="https://events.pagerduty.com", description="Events API base URL"
    )
    routing_keys: dict[str, pydantic.SecretStr] = pydantic.Field(
        default_factory=dict, description="further routing keys by the name a page step uses"
    )
    ca_file: Path | None = pydantic.Field(
        default=None, description="CA bundle to verify PagerDuty with instead of the system's"
    )


class TicketingSettings(values.Group):
    """Jira, Cloud or Data Center."""

    url: str | None = pydantic.Field(default=None, description="Jira base URL; unset disables")
    user: str | None = pydantic.Field(default=None, description="user (Cloud: e-mail)")
    token: pydantic.SecretStr | None = pydantic.Field(default=None, description="API token")
    project: str = pydantic.Field(default="OPS", description="project key for new tickets")
    flavor: str = pydantic.Field(
        default="cloud",
        pattern="^(cloud|datacenter)$",
        description="cloud (REST v3, ADF) or datacenter (REST v2)",
    )
    ca_file: Path | None = pydantic.Field(
        default=None, description="CA bundle to verify Jira with instead of the system's"
    )


class CmdbSettings(values.Group):
    """The CMDB REST API used as a dynamic Ansible inventory."""

    url: str | None = pydantic.Field(default=None, description="base URL; unset disables")
    token: pydantic.SecretStr | None = pydantic.Field(default=None, description="API token")
    scheme: str = pydantic.Field(default="Token", description="Authorization scheme")
    page_size: int = pydantic.Field(default=500, ge=1, description="hosts per page")
    cache_ttl: values.Duration = pydantic.Field(
        default=timedelta(minutes=1), description="how long a fetched inventory is reused"
    )
    max_stale: values.Duration = pydantic.Field(
        default=timedelta(minutes=30), description="how long a stale inventory serves an outage"
    )


class AnsibleSettings(values.Group):
    """How playbooks run."""

    inventory: Path | None = pydantic.Field(
        default=None, description="static inventory file or folder every run uses"
    )
    batch_size: int = pydantic.Field(
        default=100, ge=1, description="hosts per ansible-runner invocation (a resume point)"
    )
    forks: int = pydantic.Field(default=25, ge=1, description="parallel hosts per invocation")
    parallel_runs: int = pydantic.Field(
        default=2, ge=1, description="invocations of one playbook step at once"
    )
    python_interpreter: str = pydantic.Field(
        default="", description="ansible_python_interpreter of every host; empty: discover"
    )


class CredentialSettings(values.Group):
    """One named credential that http steps and HTTP actuators refer to."""

    bearer_token: pydantic.SecretStr | None = None
    username: str = ""
    password: pydantic.SecretStr | None = None
    headers: dict[str, pydantic.SecretStr] = pydantic.Field(default_factory=dict)
    params: dict[str, pydantic.SecretStr] = pydantic.Field(default_factory=dict)
    """Query parameters, for APIs that take a key in the URL (``api_key``)."""


class ActivitiesSettings(values.Group):
    """Where remediation steps keep their files, and how many run at once."""

    state_dir: Path = pydantic.Field(
        default=Path(".homeostat/runs"), description="playbook and command run directories"
    )
    threads: int = pydantic.Field(
        default=32, ge=1, description="worker threads for blocking activities (playbooks ...)"
    )
    http_timeout: values.Duration = pydantic.Field(
        default=timedelta(seconds=30), description="timeout of one request of an http step"
    )
    load_plan_timeout: values.Duration = pydantic.Field(
        default=timedelta(seconds=30),
        description="time one attempt of loading an episode's plan may take (resource "
        "workflows started after a change use it)",
    )
    on_resolve_timeout: values.Duration = pydantic.Field(
        default=timedelta(minutes=1),
        description="time one attempt of resolving a page or ticket of a resolved episode may "
        "take (resource workflows started after a change use it)",
    )
    command_env: list[str] = pydantic.Field(
        default_factory=list, description="environment variables commands inherit besides PATH"
    )
    command_secret_env: dict[str, pydantic.SecretStr] = pydantic.Field(
        default_factory=dict, description="variables set for every command, masked in output"
    )
    credentials: dict[str, CredentialSettings] = pydantic.Field(
        default_factory=dict, description="named credentials for http steps"
    )


class SlackSettings(values.Group):
    """Slack approvals: messages with Approve/Deny buttons, and the clicks coming back."""

    bot_token: pydantic.SecretStr | None = pydantic.Field(
        default=None, description="bot token (xoxb-...) with chat:write; unset disables messages"
    )
    signing_secret: pydantic.SecretStr | None = pydantic.Field(
        default=None,
        description="the app's signing secret; unset refuses every click (/v1/slack/interactions)",
    )
    approvers: list[str] = pydantic.Field(
        default_factory=list,
        description="Slack user ids (U...) or approver groups whose members may click "
        "Approve/Deny; empty refuses every click",
    )
    api_url: str = pydantic.Field(default="https://slack.com/api/", description="Web API base URL")
    ca_file: Path | None = pydantic.Field(
        default=None, description="CA bundle to verify Slack with instead of the system's"
    )

    @pydantic.field_validator("bot_token", "signing_secret")
    @classmethod
    def _not_empty(cls, value: pydantic.SecretStr | None) -> pydantic.SecretStr | None:
        if value is not None and not value.get_secret_value().strip():
            raise ValueError("empty: leave it unset, or set the real value")
        return value
