"""The fake HubSpot's Properties API v3: what `crm setup` reads and creates.

`GET|POST /crm/v3/properties/{objectType}` and `GET|POST /crm/v3/properties/{objectType}/groups`,
written from HubSpot's Properties API reference: a property has `name`, `label`, `type`,
`fieldType`, `groupName` and `hasUniqueValue`; creating one answers 201 with it, 409
OBJECT_ALREADY_EXISTS if the name is taken, 400 VALIDATION_ERROR for a bad body or an unknown
group. A new portal knows a few standard properties per object type and one group.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

PROPERTY_TYPES = {
    "string": {"text", "textarea", "phonenumber", "html", "file"},
    "number": {"number"},
    "date": {"date"},
    "datetime": {"date"},
    "bool": {"booleancheckbox"},
    "enumeration": {"select", "radio", "checkbox", "booleancheckbox"},
}
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
STANDARD_GROUPS = {"contacts": "contactinformation", "companies": "companyinformation"}


class PropertyRefusal(Exception):
    def __init__(self, status: int, message: str, category: str = "VALIDATION_ERROR") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.category = category


@dataclass
class PropertyCatalog:
    """Properties and groups per object type; `unique` lists the hasUniqueValue names."""

    properties: dict[str, dict[str, dict[str, Any]]]
    groups: dict[str, dict[str, dict[str, Any]]]

    @classmethod
    def new_portal(cls, object_types: dict[str, set[str]]) -> PropertyCatalog:
        """Standard properties of a new portal, plus the unique ones each object type names."""
        catalog = cls({}, {})
        for object_type, unique in object_types.items():
            group = STANDARD_GROUPS.get(object_type, f"{object_type}information")
            catalog.groups[object_type] = {}
            catalog.properties[object_type] = {}
            catalog.add_group(object_type, group, f"{object_type.title()} information")
            catalog.add(object_type, "hs_object_id", "number", group=group, unique=True)
            if object_type == "contacts":
                for name in ("firstname", "lastname"):
                    catalog.add(object_type, name, "string", group=group)
                catalog.add(object_type, "email", "string", group=group, unique=True)
            for name in sorted(unique):
                catalog.add(object_type, name, "string", group=group, unique=True)
        return catalog

    def add_group(self, object_type: str, name: str, label: str) -> dict[str, Any]:
        group = {"name": name, "label": label, "displayOrder": -1, "archived": False}
        self.groups[object_type][name] = group
        return group

    def add(
        self,
        object_type: str,
        name: str,
        type_name: str,
        *,
        group: str,
        unique: bool = False,
        field_type: str | None = None,
    ) -> dict[str, Any]:
        prop = {
            "name": name,
            "label": name.replace("_", " ").title(),
            "type": type_name,
            "fieldType": field_type or sorted(PROPERTY_TYPES[type_name])[0],
            "groupName": group,
            "hasUniqueValue": unique,
            "description": "",
            "archived": False,
            "calculated": False,
            "createdAt": "2026-01-01T00:00:00.000Z",
            "updatedAt": "2026-01-01T00:00:00.000Z",
        }
        self.properties[object_type][name] = prop
        return prop

    def unique(self, object_type: str) -> set[str]:
        props = self.properties.get(object_type, {})
        return {name for name, prop in props.items() if prop["hasUniqueValue"]}

    def create_property(self, object_type: str, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise PropertyRefusal(400, "Invalid input JSON: expected a property object")
        for required in ("name", "label", "type", "fieldType", "groupName"):
            if not isinstance(body.get(required), str) or not body[required]:
                raise PropertyRefusal(400, f"{required} is required and must be a string")
        name, type_name = body["name"], body["type"]
        if not _NAME.match(name):
            raise PropertyRefusal(400, f"Property name {name!r} is not valid")
        if type_name not in PROPERTY_TYPES or body["fieldType"] not in PROPERTY_TYPES[type_name]:
            raise PropertyRefusal(
                400, f"fieldType {body['fieldType']!r} is not valid for type {type_name!r}"
            )
        unique = body.get("hasUniqueValue", False)
        if not isinstance(unique, bool):
            raise PropertyRefusal(400, "hasUniqueValue must be a boolean")
        if body["groupName"] not in self.groups[object_type]:
            raise PropertyRefusal(400, f"Property group {body['groupName']!r} does not exist")
        if name in self.properties[object_type]:
            raise PropertyRefusal(
                409, f"A property named {name!r} already exists.", "OBJECT_ALREADY_EXISTS"
            )
        prop = self.add(
            object_type,
            name,
            type_name,
            group=body["groupName"],
            unique=unique,
            field_type=body["fieldType"],
        )
        prop["label"] = body["label"]
        prop["description"] = str(body.get("description") or "")
        return prop

    def create_group(self, object_type: str, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict) or not all(
            isinstance(body.get(k), str) and body[k] for k in ("name", "label")
        ):
            raise PropertyRefusal(400, "A property group needs a name and a label")
        if body["name"] in self.groups[object_type]:
            raise PropertyRefusal(
                409, f"A group named {body['name']!r} already exists.", "OBJECT_ALREADY_EXISTS"
            )
        return self.add_group(object_type, body["name"], body["label"])
