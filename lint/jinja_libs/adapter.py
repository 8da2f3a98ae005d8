"""`adapter` as SQLFluff's jinja templater sees it: identifiers quoted the Redshift way."""


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def dispatch(name: str, macro_namespace: str | None = None):  # pragma: no cover - not used by the models
    raise NotImplementedError(name)
