"""DAG assembly, the local runner and the `lambench` command line."""
