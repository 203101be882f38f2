"""liveshop's load-test toolkit: flash sales, fan-out, reconnect storms and churn
against a live room, with baselines measured in the same run (`python -m loadtest`)."""
