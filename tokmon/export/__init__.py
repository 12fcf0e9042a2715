"""Team-scale export: Prometheus exposition, OTLP metrics and merged machine ledgers.

Everything here reads the engine's deduplicated records (never the transcripts), so every
figure is cumulative from the ledger and a backfill counts nothing twice. See docs/team.md.
"""
