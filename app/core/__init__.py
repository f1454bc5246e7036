"""What every part stands on: settings, the database and its tables, errors, input rules, JSON shapes, API paths."""
