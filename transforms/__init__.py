"""Pure mapping engine: declarative YAML field mappings from TikTok records to warehouse/CRM rows.

No I/O beyond reading the mapping file, no Dagster, no database: data in, data out.
"""

from transforms.engine import MappingResult, RejectedRecord, apply_mapping
from transforms.errors import MappingError
from transforms.loader import load_mapping, parse_mapping
from transforms.mapping import ComputedField, MappedField, Mapping, Target
from transforms.source_fields import SOURCE_FIELD_SCOPES

__all__ = [
    "SOURCE_FIELD_SCOPES",
    "ComputedField",
    "MappedField",
    "Mapping",
    "MappingError",
    "MappingResult",
    "RejectedRecord",
    "Target",
    "apply_mapping",
    "load_mapping",
    "parse_mapping",
]
