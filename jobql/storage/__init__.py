"""SQLAlchemy only: models, queries, loaders, migrations. Never imports Strawberry."""
