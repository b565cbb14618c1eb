"""Credit-card fraud: synthetic transactions, rolling-window features, gradient boosting, online and batch inference."""
