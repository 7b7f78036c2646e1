"""The shared frame: rules, findings, running a gate, the registry, reports, the catalogue."""
