"""Order: keeps every order's status and history, and declares it completed or cancelled."""
