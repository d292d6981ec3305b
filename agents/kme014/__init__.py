"""ETSI GS QKD 014 V1.1.1 (REST-based key delivery API) in front of the agent's KME core
(`agents/kme/`): aiohttp over HTTPS with mutual TLS, in the agent's event loop. It maps HTTP to
the core's calls and the core's neutral error kinds to HTTP (`errors.ERROR_TABLE`), and nothing else."""
