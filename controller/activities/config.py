"""What the activities need to know, as plain values handed over by the worker.

The worker (a composition root) reads ``controller.settings`` and builds one
``ActivitiesConfig``; activity modules never read settings themselves. Secrets (tokens,
routing keys, credentials) live only here and in the clients built from it: they never
travel in activity inputs or outputs, so they never reach a workflow history, and their
fields are left out of ``repr`` so they never reach a log line either.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from urllib.parse import quote

from controller.activities import redaction
from controller.domain import resources


def tls_verify(ca_file: Path | None) -> ssl.SSLContext | bool:
    """What HTTP clients pass as ``verify``: the system's CAs, or only ``ca_file``'s."""
    return ssl.create_default_context(cafile=str(ca_file)) if ca_file is not None else True


class JiraFlavor(StrEnum):
    """Which Jira REST API a server speaks."""

    CLOUD = "cloud"
    """Jira Cloud: REST v3, Atlassian Document Format bodies, ``/rest/api/3/search/jql``."""
    DATACENTER = "datacenter"
    """Jira Data Center / Server: REST v2, plain-text bodies, ``/rest/api/2/search``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AnsibleConfig:
    """How playbooks run.

    Attributes:
        inventory: a static Ansible inventory (file or directory) every run uses; hosts a
            step names that it does not list are added without variables.
        batch_size: hosts per ansible-runner invocation; a finished batch is a resume
            point for a retried attempt.
        forks: parallel hosts within one invocation (``--forks``).
        parallel_runs: invocations of one activity running at once.
        python_interpreter: ``ansible_python_interpreter`` for every host; empty keeps
            Ansible's discovery.
        env: extra environment variables for ``ansible-playbook`` (``ANSIBLE_CONFIG`` ...).
        keep_runs: run directories kept under ``state_dir/runs``; older ones are removed.
    """

    inventory: Path | None = None
    batch_size: int = 100
    forks: int = 25
    parallel_runs: int = 2
    python_interpreter: str = ""
    env: Mapping[str, str] = field(default_factory=dict)
    keep_runs: int = 200


@dataclass(frozen=True, slots=True, kw_only=True)
class PagerDutyConfig:
    """PagerDuty Events API v2.

    Attributes:
        events_url: the Events API base URL (``https://`` only, as the client requires).
        routing_key: the default integration (routing) key.
        routing_keys: further keys by name, chosen by a page step's ``routing``.
        ca_file: a CA bundle to verify the server with, instead of the system's.
        timeout: timeout of one request.
    """

    events_url: str = "https://events.pagerduty.com"
    routing_key: str = field(repr=False)
    routing_keys: Mapping[str, str] = field(default_factory=dict, repr=False)
    ca_file: Path | None = None
    timeout: timedelta = timedelta(seconds=10)


@dataclass(frozen=True, slots=True, kw_only=True)
class JiraConfig:
    """A Jira server.

    Attributes:
        url: base URL (``https://example.atlassian.net``).
        flavor: Cloud (v3) or Data Center (v2).
        user: Cloud: the account's e-mail (basic auth with ``token``); Data Center: a user
            name for basic auth, or empty to send ``token`` as a bearer personal access token.
        token: API token (Cloud), password or personal access token (Data Center).
        project: the project key used when a step names none.
        ca_file: a CA bundle to verify the server with, instead of the system's.
        timeout: timeout of one request.
    """

    url: str
    flavor: JiraFlavor = JiraFlavor.CLOUD
    user: str = ""
    token: str = field(default="", repr=False)
    project: str = "OPS"
    ca_file: Path | None = None
    timeout: timedelta = timedelta(seconds=15)


@dataclass(frozen=True, slots=True, kw_only=True)
class CmdbConfig:
    """A CMDB REST API listing hosts, used as the dynamic inventory.

    The contract (``tests/fakes/fake_cmdb.py`` implements it): ``GET {url}/hosts/?limit=N``
    answers ``{"count": n, "next": URL | null, "results": [{"name", "ip", "user", "role",
    "groups": [...], "vars": {...}}]}`` (NetBox / Django REST framework pagination).

    Attributes:
        url: base URL of the API.
        token: sent as ``Authorization: {scheme} {token}``.
        scheme: the authorization scheme (``Token`` for NetBox, ``Bearer`` ...).
        page_size: hosts per page.
        cache_ttl: how long a fetched inventory is reused.
        max_stale: how long an older inventory is still used when the CMDB fails.
        ca_file: a CA bundle to verify the server with, instead of the system's.
        timeout: timeout of one request.
    """

    url: str
    token: str = field(default="", repr=False)
    scheme: str = "Token"
    page_size: int = 500
    cache_ttl: timedelta = timedelta(minutes=1)
    max_stale: timedelta = timedelta(minutes=30)
    ca_file: Path | None = None
    timeout: timedelta = timedelta(seconds=15)


@dataclass(frozen=True, slots=True, kw_only=True)
class PrometheusConfig:
    """The Prometheus server that ``verify`` and ``query_metric`` ask.

    Attributes:
        url: base URL.
        timeout: timeout of one query.
        headers: headers for every query (an ``Authorization`` header is a secret).
    """

    url: str
    timeout: timedelta = timedelta(seconds=10)
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpCredential:
    """A credential an HTTP step names; whichever fields are set are attached.

    Attributes:
        bearer_token: sent as ``Authorization: Bearer ...``.
        username: basic-auth user (with ``password``).
        password: basic-auth password.
        headers: further headers (``X-Auth-Token`` for Equinix Metal, ``Authorization:
            sso-key K:S`` for GoDaddy ...).
        params: query parameters, for APIs that take a key in the URL (``api_key``).
    """

    bearer_token: str = field(default="", repr=False)
    username: str = ""
    password: str = field(default="", repr=False)
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    params: Mapping[str, str] = field(default_factory=dict, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class CommandsConfig:
    """How commands run.

    Attributes:
        workdir: working directory of commands whose step sets none.
        inherit_env: variables of the worker's environment passed on (``PATH`` and a few
            locale variables always are).
        secret_env: variables set for every command, such as cloud credentials; their
            values are masked in captured output.
        default_timeout: the longest a command may run when the activity has no
            start-to-close timeout.
        grace: time between SIGTERM and SIGKILL when a command is stopped.
    """

    workdir: Path = Path()
    inherit_env: tuple[str, ...] = ()
    secret_env: Mapping[str, str] = field(default_factory=dict, repr=False)
    default_timeout: timedelta = timedelta(minutes=10)
    grace: timedelta = timedelta(seconds=5)


@dataclass(frozen=True, slots=True, kw_only=True)
class LinksConfig:
    """Where people look: used to add links to pages and tickets.

    Attributes:
        temporal_ui_url: the Temporal Web UI (``http://localhost:8233``); empty adds no link.
        namespace: the Temporal namespace of the workflows.
    """

    temporal_ui_url: str = ""
    namespace: str = "default"

    def episode_url(self, episode: resources.EpisodeId) -> str:
        """The Web UI page of the episode's remediation workflow; empty without a UI URL."""
        base = self.temporal_ui_url.rstrip("/")
        if not base:
            return ""
        workflow_id = quote(resources.remediation_workflow_id(episode), safe="")
        return f"{base}/namespaces/{quote(self.namespace, safe='')}/workflows/{workflow_id}"


@dataclass(frozen=True, slots=True, kw_only=True)
class SlackConfig:
    """Slack's Web API, for approval messages.

    Attributes:
        bot_token: the bot token (``xoxb-...``) with the ``chat:write`` scope.
        api_url: the Web API base URL (``https://slack.com/api/``).
        ca_file: a CA bundle to verify the server with, instead of the system's.
        timeout: timeout of one request.
    """

    bot_token: str = field(repr=False)
    api_url: str = "https://slack.com/api/"
    ca_file: Path | None = None
    timeout: timedelta = timedelta(seconds=10)


@dataclass(frozen=True, slots=True, kw_only=True)
class ActivitiesConfig:
    """Everything the activities need, built once by the worker.

    Attributes:
        remediations_dir: remediation plans (``load_plan``).
        playbooks_dir: playbooks (``run_playbook``, the playbook actuator).
        state_dir: run directories, logs and artifacts kept outside the histories.
        ansible: how playbooks run.
        pagerduty: PagerDuty; ``None`` makes page activities fail as not configured.
        jira: Jira; ``None`` makes ticket activities fail as not configured.
        cmdb: the CMDB used as dynamic inventory; ``None`` uses ``ansible.inventory``.
        prometheus: Prometheus; ``None`` makes PromQL activities fail as not configured.
        commands: how commands run.
        credentials: HTTP credentials by the name steps use.
        http_timeout: timeout of one HTTP request of an ``http`` step or actuator.
        links: where people look.
        slack: Slack; ``None`` makes Slack activities fail as not configured.
    """

    remediations_dir: Path
    playbooks_dir: Path
    state_dir: Path
    ansible: AnsibleConfig = AnsibleConfig()
    pagerduty: PagerDutyConfig | None = None
    jira: JiraConfig | None = None
    cmdb: CmdbConfig | None = None
    prometheus: PrometheusConfig | None = None
    commands: CommandsConfig = CommandsConfig()
    credentials: Mapping[str, HttpCredential] = field(default_factory=dict, repr=False)
    http_timeout: timedelta = timedelta(seconds=30)
    links: LinksConfig = LinksConfig()
    slack: SlackConfig | None = None

    def secrets(self) -> tuple[str, ...]:
        """Every secret value, longest first, in every form it is sent, for masking output.

        Besides the values themselves: the base64 ``user:password`` pair of each basic
        credential (HTTP steps and Jira), and the bare token of each ``Scheme token``
        header value, which an API may echo without its scheme.
        """
        found: set[str] = set(self.commands.secret_env.values())
        headers: list[str] = []
        if self.pagerduty is not None:
            found.add(self.pagerduty.routing_key)
            found.update(self.pagerduty.routing_keys.values())
        if self.jira is not None:
            found.add(self.jira.token)
            if self.jira.user:
                found.update(redaction.basic_forms(self.jira.user, self.jira.token))
        if self.cmdb is not None:
            found.add(self.cmdb.token)
        if self.prometheus is not None:
            headers += self.prometheus.headers.values()
        if self.slack is not None:
            found.add(self.slack.bot_token)
        for credential in self.credentials.values():
            found.update((credential.bearer_token, credential.password))
            found.update(credential.params.values())
            if credential.username:
                found.update(redaction.basic_forms(credential.username, credential.password))
            headers += credential.headers.values()
        for value in headers:
            found.add(value)
            found.add(value.partition(" ")[2].strip())
        minimum = redaction.MIN_SECRET
        return tuple(sorted((s for s in found if len(s) >= minimum), key=len, reverse=True))
