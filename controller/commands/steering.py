"""``homeostat resource approve|deny|silence|unsilence|pause|resume|reset``: steer a resource.

Two ways to the resource's workflow, one set of verbs:

- with ``--api URL`` (or ``HOMEOSTAT_API_URL``) and ``--token`` (or
  ``HOMEOSTAT_API_TOKEN``), through the operator API, which records the change under the
  token's name;
- otherwise straight to Temporal, recorded under your operating-system user name. Whoever
  can reach Temporal can do anything to its workflows: that name is only as trustworthy as
  access to Temporal is restricted.

A refusal (not one of the step's approvers, not awaiting approval, a silence that ends in
the past) is printed as such and exits 1, never reported as done.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import getpass
import json
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Protocol, TypeVar

import pydantic
import typer

from controller import connection, errors
from controller import settings as settings_module
from controller.commands import remote
from controller.domain import approvals, durations, resources
from controller.operations import identity, steering

Result = TypeVar("Result")

ResourceArg = Annotated[str, typer.Argument(help="The resource as kind/name, e.g. service/web.")]
EpisodeArg = Annotated[str, typer.Argument(help="The episode id (see `homeostat resource show`).")]
ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="Settings file (YAML).", dir_okay=False)
]
ReasonOption = Annotated[str, typer.Option("--reason", "-m", help="Why (recorded).")]
ApiOption = remote.ApiOption
TokenOption = remote.TokenOption
JsonOption = Annotated[bool, typer.Option("--json", help="Print the answer as JSON.")]


class _Operator(Protocol):
    """The verbs, whichever way they travel."""

    async def decide(
        self, *, episode: resources.EpisodeId, approve: bool, comment: str, resource: str
    ) -> steering.Decided: ...

    async def silence(self, resource: str, *, until: datetime, reason: str) -> steering.Steered: ...

    async def operate(self, verb: str, resource: str, *, reason: str) -> steering.Steered: ...

    async def reset(
        self, resource: str, *, cooldown: bool, budget: bool, reason: str
    ) -> steering.Steered: ...


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class _Direct:
    """Straight to Temporal, as the operating-system user."""

    config: settings_module.Settings
    who: identity.Identity

    async def _steering(self) -> steering.Steering:
        temporal = self.config.temporal
        client = await connection.connect(temporal, temporal.client_address)
        return steering.Steering(client, timeout=self.config.api.timeout)

    async def decide(
        self, *, episode: resources.EpisodeId, approve: bool, comment: str, resource: str
    ) -> steering.Decided:
        return await (await self._steering()).decide(
            episode=episode,
            approve=approve,
            who=self.who,
            comment=comment,
            resource=resources.ResourceKey(resource),
        )

    async def silence(self, resource: str, *, until: datetime, reason: str) -> steering.Steered:
        return await (await self._steering()).silence(
            resources.ResourceKey(resource), until=until, who=self.who, reason=reason
        )

    async def operate(self, verb: str, resource: str, *, reason: str) -> steering.Steered:
        steer = await self._steering()
        action = {
            "unsilence": steer.unsilence,
            "pause": steer.pause,
            "resume": steer.resume,
        }[verb]
        return await action(resources.ResourceKey(resource), who=self.who, reason=reason)

    async def reset(
        self, resource: str, *, cooldown: bool, budget: bool, reason: str
    ) -> steering.Steered:
        return await (await self._steering()).reset(
            resources.ResourceKey(resource),
            who=self.who,
            cooldown=cooldown,
            budget=budget,
            reason=reason,
        )


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class _Remote:
    """Through the operator API, as the token's owner."""

    client: remote.RemoteSteering

    async def decide(
        self, *, episode: resources.EpisodeId, approve: bool, comment: str, resource: str
    ) -> steering.Decided:
        return await self.client.decide(
            episode=episode,
            approve=approve,
            comment=comment,
            resource=resources.ResourceKey(resource),
        )

    async def silence(self, resource: str, *, until: datetime, reason: str) -> steering.Steered:
        return await self.client.silence(
            resources.ResourceKey(resource), until=until, reason=reason
        )

    async def operate(self, verb: str, resource: str, *, reason: str) -> steering.Steered:
        return await self.client.operate(verb, resources.ResourceKey(resource), reason=reason)

    async def reset(
        self, resource: str, *, cooldown: bool, budget: bool, reason: str
    ) -> steering.Steered:
        return await self.client.reset(
            resources.ResourceKey(resource), cooldown=cooldown, budget=budget, reason=reason
        )


def _fail(message: str, code: int) -> typer.Exit:
    typer.echo(f"homeostat: {message}", err=True)
    return typer.Exit(code)


def _operator(config: Path | None, api: str, token: str) -> _Operator:
    if api:
        if not token:
            raise _fail("--api needs --token (or HOMEOSTAT_API_TOKEN)", 2)
        return _Remote(client=remote.RemoteSteering(api, token))
    try:
        settings = settings_module.load(config)
    except errors.ConfigError as exc:
        raise _fail(str(exc), 2) from None
    directory = identity.Directory.of(settings.api.groups)
    who = directory.identify(getpass.getuser(), approvals.Channel.CLI)
    return _Direct(config=settings, who=who)


def _check_resource(resource: str) -> None:
    try:
        resources.parse_resource_key(resource)
    except ValueError as exc:
        raise _fail(str(exc), 2) from None


def _call(work: Callable[[], Coroutine[object, object, Result]]) -> Result:
    failure: typer.Exit | None = None
    try:
        return asyncio.run(work())
    except errors.ForbiddenError as exc:
        failure = _fail(f"refused: {exc}", 1)
    except errors.RefusedError as exc:
        failure = _fail(f"refused by the workflow: {exc}", 1)
    except errors.AuthError as exc:
        failure = _fail(f"the API did not accept the token: {exc}", 1)
    except (errors.NotFoundError, errors.DependencyError) as exc:
        failure = _fail(str(exc), 1)
    finally:
        # The Temporal client's native runtime must be gone before the interpreter ends:
        # dropped during finalization it aborts the process (SIGABRT). An exception's
        # frames keep the client alive, so collect once they are released.
        gc.collect()
    raise failure


def _print(answer: steering.Decided | steering.Steered, line: str, *, as_json: bool) -> None:
    if as_json:
        shown = pydantic.TypeAdapter(type(answer)).dump_python(answer, mode="json")
        typer.echo(json.dumps(shown, indent=2))
    else:
        typer.echo(line)


def _by(answer: steering.Decided | steering.Steered) -> str:
    return f"by {answer.by} ({answer.channel.value})"


def _decide(
    *,
    approve: bool,
    resource: str,
    episode: str,
    reason: str,
    config: Path | None,
    api: str,
    token: str,
    as_json: bool,
) -> None:
    _check_resource(resource)
    operator = _operator(config, api, token)
    decided = _call(
        lambda: operator.decide(
            episode=resources.EpisodeId(episode),
            approve=approve,
            comment=reason,
            resource=resource,
        )
    )
    verb = "approved" if decided.approved else "denied"
    _print(decided, f"{verb} episode {decided.episode} {_by(decided)}", as_json=as_json)


def approve(
    resource: ResourceArg,
    episode: EpisodeArg,
    reason: ReasonOption = "",
    config: ConfigOption = None,
    api: ApiOption = "",
    token: TokenOption = "",
    as_json: JsonOption = False,
) -> None:
    """Approve the approval step the episode's remediation waits at (if you are an approver)."""
    _decide(
        approve=True,
        resource=resource,
        episode=episode,
        reason=reason,
        config=config,
        api=api,
        token=token,
        as_json=as_json,
    )


def deny(
    resource: ResourceArg,
    episode: EpisodeArg,
    reason: ReasonOption = "",
    config: ConfigOption = None,
    api: ApiOption = "",
    token: TokenOption = "",
    as_json: JsonOption = False,
) -> None:
    """Deny the approval step; the plan stops there."""
    _decide(
        approve=False,
        resource=resource,
        episode=episode,
        reason=reason,
        config=config,
        api=api,
        token=token,
        as_json=as_json,
    )


def silence(
    resource: ResourceArg,
    duration: Annotated[str, typer.Argument(help="How long, e.g. 2h or 30m.")],
    reason: ReasonOption = "",
    config: ConfigOption = None,
    api: ApiOption = "",
    token: TokenOption = "",
    as_json: JsonOption = False,
) -> None:
    """Silence automation for a while: episodes are recorded, nothing is run or paged."""
    _check_resource(resource)
    try:
        until = datetime.now(UTC) + durations.parse_duration(duration)
    except ValueError as exc:
        raise _fail(f"duration: {exc}", 2) from None
    operator = _operator(config, api, token)
    steered = _call(lambda: operator.silence(resource, until=until, reason=reason))
    shown = steered.silenced_until.isoformat() if steered.silenced_until else "?"
    _print(steered, f"silenced {steered.resource} until {shown} {_by(steered)}", as_json=as_json)


def _operate(
    verb: str, done: str, resource: str, reason: str, config: Path | None, api: str, token: str
) -> tuple[steering.Steered, str]:
    _check_resource(resource)
    operator = _operator(config, api, token)
    steered = _call(lambda: operator.operate(verb, resource, reason=reason))
    return steered, f"{done} {steered.resource} {_by(steered)}; phase {steered.phase.value}"


def unsilence(
    resource: ResourceArg,
    reason: ReasonOption = "",
    config: ConfigOption = None,
    api: ApiOption = "",
    token: TokenOption = "",
    as_json: JsonOption = False,
) -> None:
    """End a silence now."""
    steered, line = _operate("unsilence", "unsilenced", resource, reason, config, api, token)
    _print(steered, line, as_json=as_json)


def pause(
    resource: ResourceArg,
    reason: ReasonOption = "",
    config: ConfigOption = None,
    api: ApiOption = "",
    token: TokenOption = "",
    as_json: JsonOption = False,
) -> None:
    """Pause automation for the resource until resumed (episodes are still recorded)."""
    steered, line = _operate("pause", "paused", resource, reason, config, api, token)
    _print(steered, line, as_json=as_json)


def resume(
    resource: ResourceArg,
    reason: ReasonOption = "",
    config: ConfigOption = None,
    api: ApiOption = "",
    token: TokenOption = "",
    as_json: JsonOption = False,
) -> None:
    """Resume automation paused with `homeostat resource pause`."""
    steered, line = _operate("resume", "resumed", resource, reason, config, api, token)
    _print(steered, line, as_json=as_json)


def reset(
    resource: ResourceArg,
    cooldown: Annotated[
        bool, typer.Option("--cooldown", help="End the cooldowns (alone: keep the budget).")
    ] = False,
    budget: Annotated[
        bool, typer.Option("--budget", help="Forget the budget use (alone: keep cooldowns).")
    ] = False,
    reason: ReasonOption = "",
    config: ConfigOption = None,
    api: ApiOption = "",
    token: TokenOption = "",
    as_json: JsonOption = False,
) -> None:
    """End the resource's cooldowns and forget its budget use now (both unless one is named)."""
    _check_resource(resource)
    both = not (cooldown or budget)
    operator = _operator(config, api, token)
    steered = _call(
        lambda: operator.reset(
            resource, cooldown=cooldown or both, budget=budget or both, reason=reason
        )
    )
    parts = (("cooldowns ended", cooldown or both), ("budget reset", budget or both))
    what = " and ".join(part for part, wanted in parts if wanted)
    _print(steered, f"{steered.resource}: {what} {_by(steered)}", as_json=as_json)


def register(app: typer.Typer) -> None:
    """Add the steering verbs to the ``resource`` command group."""
    for command in (approve, deny, silence, unsilence, pause, resume, reset):
        app.command()(command)
