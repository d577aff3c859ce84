"""The machinery of jobql's maintenance commands (`jobql schema-check`)."""
