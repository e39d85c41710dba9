"""The quality eval of AI review (`gantry eval review`): a dataset of seeded bugs and clean
changes (dataset.py), reviewed through the real engine (runner.py) with answers from an endpoint
or a recorded file (sources.py), scored (score.py) and reported (report.py). The dev dataset is
built from a package's own tests killing its mutants (seeding.py, build.py)."""
