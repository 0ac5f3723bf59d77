"""dflow OPs: thin typed wrappers that call lambench_core. No science lives here."""
