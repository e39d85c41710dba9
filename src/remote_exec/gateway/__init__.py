"""The GPU-box side of remote execution: a thin authenticated HTTP front door over a backend."""
