"""dwh verify: the warehouse compared with the source (docs/verify.md)."""
