"""Weight-editing baselines of the LFTF paper, implemented natively: DAMA (``dama``); the
pieces they share live in ``common``."""
