"""Complete FTI systems built on fti: iris and credit-card fraud (see each README), and `make demo`."""
