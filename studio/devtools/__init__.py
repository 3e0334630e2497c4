"""Development tools, not the product: demo data and logins, the benchmark, the load run."""
