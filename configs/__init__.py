"""The experiment configs (one YAML file per experiment), installed as package data."""
