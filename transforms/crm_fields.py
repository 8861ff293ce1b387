"""The CRM fields a set of mappings writes, per target object: what `crm setup` checks the CRM
for (resources/crm/setup_hubspot.py, setup_salesforce.py)."""

from __future__ import annotations

from resources.crm.setup_plan import FieldNeed
from transforms.mapping import Mapping


def field_needs(mappings: list[Mapping]) -> dict[str, list[FieldNeed]]:
    """Target object -> the fields its mappings write, each once (the key first)."""
    needs: dict[str, dict[str, FieldNeed]] = {}
    for mapping in mappings:
        sources = {f.target: (f.source, f.transforms) for f in mapping.fields}
        for name, type_name in mapping.columns:
            source, steps = sources.get(name, ("(computed)", ()))
            limits = [s.argument for s in steps if s.name == "truncate"]
            need = FieldNeed(
                name,
                type_name,
                min(limits) if limits else None,
                name in mapping.key,
                mapping.name,
                source,
            )
            known = needs.setdefault(mapping.target.object, {})
            if name not in known or need.key:
                known[name] = need
    return {
        obj: sorted(fields.values(), key=lambda need: (not need.key, need.name))
        for obj, fields in needs.items()
    }
