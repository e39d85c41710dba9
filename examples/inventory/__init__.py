"""A tiny inventory service used to show what Gantry reports."""
