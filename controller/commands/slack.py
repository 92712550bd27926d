"""``homeostat slack check``: is the bot token good, and which workspace and bot is it?

Calls Slack's ``auth.test`` with ``slack.bot_token`` (at ``slack.api_url``), the same
client the approval messages use, and prints the workspace and the bot user, or Slack's
error (``invalid_auth``, ``not_authed`` ...) and exit status 1.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer

from controller import errors
from controller import settings as settings_module
from controller.activities import config as activities_config
from controller.activities import slack as slack_activities

app = typer.Typer(help="Slack approvals: check the app's set-up.", no_args_is_help=True)


@app.command()
def check(
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="Settings file (YAML).", dir_okay=False)
    ] = None,
) -> None:
    """Check slack.bot_token with auth.test; print the workspace and the bot user."""
    try:
        settings = settings_module.load(config)
    except errors.ConfigError as exc:
        typer.echo(f"homeostat: {exc}", err=True)
        raise typer.Exit(2) from None
    if settings.slack.bot_token is None:
        typer.echo("homeostat: slack.bot_token is not set", err=True)
        raise typer.Exit(2)
    client = slack_activities.make_client(
        activities_config.SlackConfig(
            bot_token=settings.slack.bot_token.get_secret_value(),
            api_url=settings.slack.api_url,
            ca_file=settings.slack.ca_file,
            timeout=timedelta(seconds=10),
        )
    )
    failure = ""
    try:
        with slack_activities.translated("auth.test"):
            answer = client.auth_test()
    except errors.RemediationError as exc:
        failure = str(exc)
    if failure:
        typer.echo(f"homeostat: {failure}", err=True)
        raise typer.Exit(1)
    typer.echo(
        f"Slack: workspace {answer.get('team')} ({answer.get('team_id')}), "
        f"bot user {answer.get('user')} ({answer.get('user_id')})"
    )
    if not settings.slack.signing_secret:
        typer.echo("warning: slack.signing_secret is not set: every click will be refused")
    if not settings.slack.approvers:
        typer.echo("warning: slack.approvers is empty: every click will be refused")
