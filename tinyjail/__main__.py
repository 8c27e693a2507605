"""`python -m tinyjail` is the same as the `tinyjail` console script."""

from tinyjail.cli import main

if __name__ == "__main__":
    main()
