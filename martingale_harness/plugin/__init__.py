"""Plugin machinery: hook specs, the host that loads plugins, the plugin template, reward-term types."""
