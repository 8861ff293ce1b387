"""The warehouse: idempotent writes, and every statement on its tables."""
