"""`crm setup` for HubSpot: the custom properties the mapping files write, via Properties API v3.

Reads `GET /crm/v3/properties/{objectType}` and `.../groups` (scope `crm.schemas.<type>.read`),
plans a `tiktok` property group and one `string` property per mapped field that is missing (the
key with `hasUniqueValue: true`, so it can be the upsert's `idProperty`), then creates them with
`POST` (scope `crm.schemas.<type>.write`). An existing property is left as it is: a key property
without unique values cannot be made unique afterwards, so that is a manual step. Running it again
finds everything `ok` and changes nothing; a 409 (created meanwhile) counts as done.
"""

from __future__ import annotations

from typing import Any

import httpx

from resources.crm.config import HubSpotSettings
from resources.crm.errors import ContractViolation
from resources.crm.http import CrmHttp
from resources.crm.hubspot_errors import json_body, raise_for_error
from resources.crm.setup_plan import (
    CREATE,
    MANUAL,
    OK,
    WARN,
    FieldNeed,
    SetupPlan,
    Step,
)

GROUP = "tiktok"
GROUP_LABEL = "TikTok"
SINGLE_LINE_MAX = 255  # longer text goes to a multi-line (textarea) property


def _label(name: str) -> str:
    text = " ".join("TikTok" if word == "tiktok" else word for word in name.split("_"))
    return text[:1].upper() + text[1:]


def property_body(need: FieldNeed) -> dict[str, Any]:
    long_text = need.max_length is not None and need.max_length > SINGLE_LINE_MAX
    body: dict[str, Any] = {
        "name": need.name,
        "label": _label(need.name),
        "type": "string",
        "fieldType": "textarea" if long_text else "text",
        "groupName": GROUP,
        "description": f"Synced from TikTok ({need.source}) by tiktok-crm-sync, "
        f"mapping {need.mapping}.",
    }
    if need.key:
        body["hasUniqueValue"] = True
    return body


class HubSpotSetup:
    def __init__(self, settings: HubSpotSettings, http: CrmHttp) -> None:
        self._settings = settings
        self._http = http

    def plan(self, fields: dict[str, list[FieldNeed]]) -> SetupPlan:
        """`fields`: target object -> the fields the mappings write (`transforms.crm_fields`)."""
        steps: list[Step] = []
        for object_type, needs in fields.items():
            steps += self._plan_object(object_type, needs)
        return SetupPlan("hubspot", tuple(steps))

    def _plan_object(self, object_type: str, needs: list[FieldNeed]) -> list[Step]:
        existing = {p["name"]: p for p in self._list(object_type, "")}
        groups = {g["name"] for g in self._list(object_type, "/groups")}
        steps: list[Step] = []
        creates: list[Step] = []
        for need in needs:
            found = existing.get(need.name)
            what = f"{object_type} property {need.name}"
            if found is None:
                body = property_body(need)
                unique = ", unique values" if need.key else ""
                creates.append(
                    Step(
                        CREATE,
                        what,
                        f"{body['type']}/{body['fieldType']} in group {GROUP}{unique}",
                        body,
                        object_type,
                        "property",
                    )
                )
            elif need.key and not found.get("hasUniqueValue"):
                steps.append(
                    Step(
                        MANUAL,
                        what,
                        "exists without unique values, so it cannot be the upsert's idProperty; "
                        "HubSpot cannot make an existing property unique: delete it in Settings > "
                        "Properties and run `crm setup` again (it recreates it as unique)",
                    )
                )
            elif found.get("type") != "string":
                steps.append(
                    Step(
                        WARN,
                        what,
                        f"exists with type {found.get('type')}; the push sends text, which "
                        "HubSpot converts",
                    )
                )
            else:
                steps.append(Step(OK, what, f"exists in group {found.get('groupName')}"))
        if creates and GROUP not in groups:
            group = {"name": GROUP, "label": GROUP_LABEL, "displayOrder": -1}
            steps.append(
                Step(
                    CREATE, f"{object_type} property group {GROUP}", "", group, object_type, "group"
                )
            )
        return steps + creates

    def apply(self, plan: SetupPlan) -> list[str]:
        """Create what the plan says; returns one line per step done."""
        done = []
        for step in plan.creates:
            path = "/groups" if step.kind == "group" else ""
            response = self._request("POST", step.object_type, path, step.payload, accept=(201,))
            outcome = "already there" if response.status_code == 409 else "created"
            done.append(f"{outcome}  {step.what}")
        return done

    def _list(self, object_type: str, path: str) -> list[dict[str, Any]]:
        response = self._request("GET", object_type, path, None, accept=(200,))
        body = json_body(response)
        results = body.get("results") if isinstance(body, dict) else None
        if not isinstance(results, list):
            raise ContractViolation(
                "HubSpot answered the Properties API without a results list", service="hubspot"
            )
        return [item for item in results if isinstance(item, dict) and item.get("name")]

    def _request(
        self,
        method: str,
        object_type: str,
        path: str,
        body: dict[str, Any] | None,
        *,
        accept: tuple[int, ...],
    ) -> httpx.Response:
        scope = f"crm.schemas.{object_type}.{'read' if method == 'GET' else 'write'}"

        def classify(response: httpx.Response) -> httpx.Response:
            if response.status_code in accept or response.status_code == 409:
                return response
            raise_for_error(
                response,
                scope_hint=scope,
                not_found_hint=f"HubSpot has no object type {object_type!r}; check "
                "target.object in the mapping",
            )

        url = f"{self._settings.base_url}/crm/v3/properties/{object_type}{path}"
        headers = {"Authorization": f"Bearer {self._settings.access_token}"}
        return self._http.send(method, url, json=body, headers=headers, classify=classify)
