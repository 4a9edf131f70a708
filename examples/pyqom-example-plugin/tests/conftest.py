pytest_plugins = ["plugins.testing"]
