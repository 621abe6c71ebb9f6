"""The processes: where a server's data lives (:mod:`.settings`), the server that runs the API
beside background workers (:mod:`.server`), the worker that runs rounds, imports and label
checks from the durable job table (:mod:`.worker`) and the demo project (:mod:`.demo`)."""
