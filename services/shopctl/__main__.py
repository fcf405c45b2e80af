"""`python -m services.shopctl`: the same command as the installed `shopctl` (the image uses this)."""

from services.shopctl.app import main

if __name__ == "__main__":
    main()
