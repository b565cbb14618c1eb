"""The artifact store role: model files, reports and logs."""
