"""The study layer: what the notebooks use to put paper numbers beside ours and judge claims."""
