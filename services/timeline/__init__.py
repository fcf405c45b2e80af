"""Timeline: a read model of every saga event, for operators (`shopctl order show`, `shopctl load`).

Not a participant in the saga: it publishes nothing and decides nothing; it only records.
"""
