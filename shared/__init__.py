"""The project's common library: settings, contracts and the messaging runtime."""
