"""Pipeline stages: each reads a manifest (or source files) and writes a manifest. One stage, one module."""
