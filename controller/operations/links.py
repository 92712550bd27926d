"""Where people follow a workflow: its Temporal Web UI page, and the command that tells it."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from controller.domain import resources


@dataclass(frozen=True, slots=True, kw_only=True)
class Links:
    """How to link to workflows.

    Attributes:
        ui_url: the Temporal Web UI's base URL; empty gives no links.
        namespace: the Temporal namespace of the workflows.
    """

    ui_url: str = ""
    namespace: str = "default"

    def workflow(self, workflow_id: str) -> str:
        """The Web UI page of a workflow (its latest run); empty without a UI URL."""
        base = self.ui_url.rstrip("/")
        if not base:
            return ""
        return (
            f"{base}/namespaces/{quote(self.namespace, safe='')}"
            f"/workflows/{quote(workflow_id, safe='')}"
        )

    def episode(self, episode: resources.EpisodeId) -> str:
        """The Web UI page of an episode's remediation workflow."""
        return self.workflow(resources.remediation_workflow_id(episode))

    def resource(self, key: resources.ResourceKey) -> str:
        """The Web UI page of a resource's workflow."""
        return self.workflow(resources.resource_workflow_id(key))


def history_command(target: str) -> str:
    """The command that prints the timeline of an episode or resource."""
    return f"homeostat history {target}"
