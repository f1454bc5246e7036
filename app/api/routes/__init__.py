"""One router per resource: people, recognition, collections, events, keys and the model (system), accounts, audit."""
