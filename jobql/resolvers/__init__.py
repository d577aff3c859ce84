"""Use cases: arguments -> storage calls -> rows or pages. No Strawberry here."""
