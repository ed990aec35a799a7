"""The shipped FER2013 models (safetensors + JSON sidecars), installed as package data."""
