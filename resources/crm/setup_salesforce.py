"""`crm setup` for Salesforce: check the external id field and the mapped fields through describe.

`GET /services/data/vXX.X/sobjects/{SObject}/describe` lists the sObject's fields with
`externalId` and `unique`. The REST API cannot create fields (that takes the Metadata API and a
deployment), so every missing field, and a key field not marked External ID, is a manual step
that says exactly what to create in Setup: type, length, label, API name and the boxes to tick.
A key field that is External ID but not Unique works, but then every upsert needs the
"View All Data" permission, so it is a warning.
"""

from __future__ import annotations

from typing import Any

import httpx

from resources.crm.config import SALESFORCE, SalesforceSettings
from resources.crm.errors import AuthError, ContractViolation, TargetNotFound
from resources.crm.http import CrmHttp
from resources.crm.salesforce import SalesforceClient
from resources.crm.setup_plan import MANUAL, OK, WARN, FieldNeed, SetupPlan, Step

TEXT_MAX = 255
LONG_TEXT_MAX = 131_072
_TYPES = {
    "integer": "Number(18, 0)",
    "float": "Number(12, 6)",
    "boolean": "Checkbox",
    "datetime": "Date/Time",
    "date": "Date",
    "json": f"Long Text Area({LONG_TEXT_MAX})",
}


def field_type(need: FieldNeed) -> str:
    if need.type != "string":
        return _TYPES[need.type]
    length = need.max_length or TEXT_MAX
    return f"Text({length})" if length <= TEXT_MAX else f"Long Text Area({length})"


def create_instructions(sobject: str, need: FieldNeed) -> str:
    label = need.name.removesuffix("__c").replace("_", " ")
    boxes = "; tick External ID and Unique" if need.key else ""
    return (
        f"create it in Setup > Object Manager > {sobject} > Fields & Relationships > New: "
        f"{field_type(need)}, Field Label '{label}', Field Name {need.name.removesuffix('__c')} "
        f"(API name {need.name}){boxes}; give the integration user edit access to it"
    )


class SalesforceSetup:
    def __init__(self, settings: SalesforceSettings, http: CrmHttp) -> None:
        self._settings = settings
        self._http = http
        self._base = f"{settings.instance_url}/services/data/v{settings.api_version}"

    def plan(self, fields: dict[str, list[FieldNeed]]) -> SetupPlan:
        """`fields`: target object -> the fields the mappings write (`transforms.crm_fields`)."""
        steps: list[Step] = []
        for sobject, needs in fields.items():
            fields = self._describe(sobject)
            if fields is None:
                steps.append(
                    Step(
                        MANUAL, f"sObject {sobject}", "does not exist or is not visible to the user"
                    )
                )
                continue
            steps += [self._check(sobject, need, fields.get(need.name)) for need in needs]
        return SetupPlan(SALESFORCE, tuple(steps))

    def apply(self, plan: SetupPlan) -> list[str]:
        return []  # nothing the REST API can create: every change is a manual step

    def _check(self, sobject: str, need: FieldNeed, found: dict[str, Any] | None) -> Step:
        what = f"{sobject} field {need.name}" + (" (external id)" if need.key else "")
        if found is None:
            return Step(MANUAL, what, f"missing; {create_instructions(sobject, need)}")
        if need.key and not found.get("externalId"):
            return Step(
                MANUAL,
                what,
                f"exists but is not an External ID; edit it in Setup > Object Manager > "
                f"{sobject} > Fields & Relationships > {need.name} and tick External ID and Unique",
            )
        if need.key and not found.get("unique"):
            return Step(
                WARN,
                what,
                "External ID but not Unique: upserts then need the View All Data permission; "
                "tick Unique on the field",
            )
        if not found.get("updateable", True):
            return Step(MANUAL, what, "exists but the user cannot edit it: grant field access")
        return Step(OK, what, f"exists ({found.get('type')})")

    def _describe(self, sobject: str) -> dict[str, dict[str, Any]] | None:
        url = f"{self._base}/sobjects/{sobject}/describe"
        headers = {"Authorization": f"Bearer {self._settings.access_token}"}
        client = SalesforceClient(self._settings, sobject, http=self._http)

        def classify(response: httpx.Response) -> httpx.Response:
            if response.status_code == 404:
                return response
            try:
                return client.classify(response)
            except AuthError as err:
                if response.status_code == 403:
                    err.message = (
                        f"Salesforce refused describe of {sobject} ({err.code}); the integration "
                        "user needs read access to the object (and View Setup to list fields)"
                    )
                    err.args = (err.message,)
                raise

        try:
            response = self._http.send("GET", url, headers=headers, classify=classify)
        except TargetNotFound:
            return None
        if response.status_code == 404:
            return None
        try:
            body = response.json()
        except ValueError:
            body = None
        fields = body.get("fields") if isinstance(body, dict) else None
        if not isinstance(fields, list):
            raise ContractViolation("Salesforce describe has no fields list", service=SALESFORCE)
        return {f["name"]: f for f in fields if isinstance(f, dict) and f.get("name")}
