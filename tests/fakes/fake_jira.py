"""Jira REST, Cloud (v3) and Data Center (v2), as documented for the calls Homeostat makes.

- ``POST /rest/api/{2,3}/issue`` ``{"fields": {project, summary, issuetype, labels,
  description, priority}}`` -> 201 ``{"id", "key", "self"}``; Cloud (v3) requires the
  description as an Atlassian Document Format document, Data Center (v2) as a string; an
  invalid field -> 400 ``{"errorMessages": [], "errors": {field: message}}``.
- Search: Cloud ``GET /rest/api/3/search/jql?jql=...`` -> ``{"issues": [...], "isLast"}``
  (the old ``/rest/api/{2,3}/search`` answers 410 Gone on Cloud); Data Center
  ``GET /rest/api/2/search?jql=...`` -> ``{"startAt", "maxResults", "total", "issues"}``.
- ``GET|POST /rest/api/{v}/issue/{key}/comment`` (body ADF on v3, string on v2).
- ``GET /rest/api/{v}/issue/{key}?fields=status``; ``GET|POST .../transitions``
  (``{"transition": {"id": ...}}`` -> 204).
- Authentication: Cloud basic (e-mail, API token); Data Center bearer token; else 401.

The workflow: To Do -(Start Progress)-> In Progress; Done (category ``done``) from any
status that is not done.
"""

from __future__ import annotations

import base64
import re
from typing import Any

from fake_http import FakeService, Request

_JQL_TERM = re.compile(r'(\w+)\s*=\s*"((?:[^"\\]|\\.)*)"')
_ISSUE = re.compile(
    r"^/rest/api/(?P<v>[23])/issue/(?P<key>[A-Z]+-\d+)(?P<rest>/comment|/transitions)?$"
)
STATUSES = {
    "To Do": {"name": "To Do", "statusCategory": {"key": "new"}},
    "In Progress": {"name": "In Progress", "statusCategory": {"key": "indeterminate"}},
    "Done": {"name": "Done", "statusCategory": {"key": "done"}},
}
TRANSITIONS = [
    {"id": "11", "name": "Start Progress", "to": STATUSES["In Progress"]},
    {"id": "31", "name": "Done", "to": STATUSES["Done"]},
]
PRIORITIES = {"Highest", "High", "Medium", "Low", "Lowest"}


class FakeJira(FakeService):
    def __init__(self, *, cloud: bool, user: str = "", token: str) -> None:
        super().__init__()
        self.cloud = cloud
        self.version = "3" if cloud else "2"
        self.user = user
        self.token = token
        self.issues: dict[str, dict[str, Any]] = {}
        self._next = 1

    def tickets_labelled(self, label: str) -> list[dict[str, Any]]:
        return [i for i in self.issues.values() if label in i["fields"]["labels"]]

    def route(self, request: Request) -> tuple[int, Any]:
        if not self._authenticated(request.headers.get("authorization", "")):
            return 401, {"errorMessages": ["You are not authenticated."], "errors": {}}
        if "/search" in request.path:
            return self._search_route(request)
        if request.path == f"/rest/api/{self.version}/issue" and request.method == "POST":
            return self._create(request.body or {})
        return self._issue_route(request)

    def _search_route(self, request: Request) -> tuple[int, Any]:
        cloud_search = self.cloud and request.path == "/rest/api/3/search/jql"
        dc_search = not self.cloud and request.path == "/rest/api/2/search"
        if request.method != "GET" or not (cloud_search or dc_search):
            return 410, {"errorMessages": ["The requested API has been removed."]}
        issues = self._search(request.query.get("jql", ""))
        if self.cloud:
            return 200, {"issues": issues, "isLast": True}
        return 200, {"startAt": 0, "maxResults": 50, "total": len(issues), "issues": issues}

    def _issue_route(self, request: Request) -> tuple[int, Any]:
        found = _ISSUE.match(request.path)
        if not found or found["v"] != self.version:
            return 404, {"errorMessages": [f"no route {request.method} {request.path}"]}
        issue = self.issues.get(found["key"])
        if issue is None:
            return 404, {
                "errorMessages": ["Issue does not exist or you do not have permission to see it."]
            }
        if found["rest"] == "/comment":
            return self._comment(issue, request)
        if found["rest"] == "/transitions":
            return self._transition(issue, request)
        if request.method == "GET":
            return 200, {
                "id": issue["id"],
                "key": issue["key"],
                "fields": {"status": issue["fields"]["status"]},
            }
        return 405, {"errorMessages": ["method not allowed"]}

    def _authenticated(self, header: str) -> bool:
        if self.cloud or self.user:
            expected = base64.b64encode(f"{self.user}:{self.token}".encode()).decode()
            return header == f"Basic {expected}"
        return header == f"Bearer {self.token}"

    def _body_ok(self, body: Any) -> bool:
        if self.cloud:
            return isinstance(body, dict) and body.get("type") == "doc" and body.get("version") == 1
        return isinstance(body, str)

    def _create(self, payload: dict[str, Any]) -> tuple[int, Any]:
        fields = payload.get("fields") or {}
        errors: dict[str, str] = {}
        project = (fields.get("project") or {}).get("key")
        if not project:
            errors["project"] = "Specify a valid project ID or key"
        if not fields.get("summary"):
            errors["summary"] = "You must specify a summary of the issue."
        if "description" in fields and not self._body_ok(fields["description"]):
            errors["description"] = (
                "Operation value must be an Atlassian Document"
                if self.cloud
                else "Operation value must be a string"
            )
        priority = fields.get("priority")
        if priority is not None and priority.get("name") not in PRIORITIES:
            errors["priority"] = f"Priority name '{priority.get('name')}' is not valid"
        if any(" " in label for label in fields.get("labels", [])):
            errors["labels"] = "The label 'x y' contains spaces which is invalid."
        if errors:
            return 400, {"errorMessages": [], "errors": errors}
        number = self._next
        self._next += 1
        key = f"{project}-{number}"
        self.issues[key] = {
            "id": str(10000 + number),
            "key": key,
            "fields": {
                "summary": fields["summary"],
                "labels": list(fields.get("labels", [])),
                "description": fields.get("description"),
                "issuetype": fields.get("issuetype"),
                "priority": fields.get("priority"),
                "project": {"key": project},
                "status": STATUSES["To Do"],
            },
            "comments": [],
        }
        return 201, {
            "id": self.issues[key]["id"],
            "key": key,
            "self": f"{self.url}/rest/api/{self.version}/issue/{key}",
        }

    def _search(self, jql: str) -> list[dict[str, Any]]:
        terms = {name.lower(): value.replace('\\"', '"') for name, value in _JQL_TERM.findall(jql)}
        found = []
        for issue in self.issues.values():
            if "project" in terms and issue["fields"]["project"]["key"] != terms["project"]:
                continue
            if "labels" in terms and terms["labels"] not in issue["fields"]["labels"]:
                continue
            found.append(
                {
                    "id": issue["id"],
                    "key": issue["key"],
                    "fields": {"status": issue["fields"]["status"]},
                }
            )
        return found

    def _comment(self, issue: dict[str, Any], request: Request) -> tuple[int, Any]:
        if request.method == "GET":
            comments = list(issue["comments"])
            if request.query.get("orderBy") == "-created":
                comments.reverse()
            return 200, {
                "startAt": 0,
                "maxResults": 50,
                "total": len(comments),
                "comments": comments,
            }
        body = (request.body or {}).get("body")
        if not self._body_ok(body):
            return 400, {"errorMessages": [], "errors": {"comment": "Comment body is invalid"}}
        comment = {"id": str(20000 + len(issue["comments"]) + 1), "body": body}
        issue["comments"].append(comment)
        return 201, comment

    def _transition(self, issue: dict[str, Any], request: Request) -> tuple[int, Any]:
        done = issue["fields"]["status"]["statusCategory"]["key"] == "done"
        available = (
            []
            if done
            else [t for t in TRANSITIONS if t["to"]["name"] != issue["fields"]["status"]["name"]]
        )
        if request.method == "GET":
            return 200, {"transitions": available}
        wanted = ((request.body or {}).get("transition") or {}).get("id")
        chosen = next((t for t in available if t["id"] == wanted), None)
        if chosen is None:
            return 400, {
                "errorMessages": [f"Transition id '{wanted}' is not valid for this issue."],
                "errors": {},
            }
        issue["fields"]["status"] = chosen["to"]
        return 204, None
