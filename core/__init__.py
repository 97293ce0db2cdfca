"""The ground floor: what every other package may import, and which imports none of them.

Settings (where the data lives), the project's exception types, crash-safe file writes and
the dbt manifest. Kept small and free of heavy imports, so that importing it costs nothing.
"""
